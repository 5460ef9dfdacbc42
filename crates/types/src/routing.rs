//! Routing: where a key goes in a stream's (or a Key-Value Table's) key space, computed exactly as
//! Pravega's clients compute it, so that data routed here and by the official clients lands in the
//! same segments.

/// Seed of event routing: Java's `"EventRouter".hashCode()`.
const EVENT_ROUTER_SEED: i32 = 1_741_865_571;
/// Seed of Key-Value Table routing: Java's `"KeyValueTableRouter".hashCode()`.
const KVT_ROUTER_SEED: i32 = -2_020_233_499;

/// The position of an event's routing key in the key space [0, 1): murmur3 x64-128 over the key's
/// UTF-16 code units as little-endian bytes, seeded as Pravega seeds it; the first 64-bit word's
/// high 52 bits become the fraction of a double in [1, 2), minus 1.
///
/// This is the Java client's computation. The official Rust client (0.3.x) sizes its UTF-16
/// buffer by the UTF-8 length, so for keys with non-ASCII characters it hashes trailing zero code
/// units and lands elsewhere; for ASCII keys all agree.
pub fn routing_key_position(key: &str) -> f64 {
    let mut bytes = Vec::with_capacity(key.len() * 2);
    for unit in key.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    to_unit_interval(murmur3_x64_128(&bytes, EVENT_ROUTER_SEED).0)
}

/// The position of a Key-Value Table entry's primary key in the table's key space, as Pravega's
/// Java client routes it (murmur3 x64-128 over the key bytes, seeded with
/// `"KeyValueTableRouter".hashCode()`).
pub fn key_value_table_position(primary_key: &[u8]) -> f64 {
    to_unit_interval(murmur3_x64_128(primary_key, KVT_ROUTER_SEED).0)
}

/// The partition (0-based) of a Key-Value Table with `partitions` partitions that holds
/// `primary_key`: partition `i` covers `[i/n, (i+1)/n)`, the last ending at 1.
pub fn key_value_table_partition(primary_key: &[u8], partitions: u32) -> u32 {
    let position = key_value_table_position(primary_key);
    (0..partitions)
        .find(|i| {
            let (low, high) = key_space_part(*i, partitions);
            low <= position && position < high
        })
        .unwrap_or(partitions.saturating_sub(1))
}

/// Part `i` of `count` equal parts of the key space [0, 1); the last ends exactly at 1.0. This is
/// how a stream's first segments and a Key-Value Table's partitions divide the key space.
pub fn key_space_part(i: u32, count: u32) -> (f64, f64) {
    let width = 1.0 / f64::from(count);
    let low = width * f64::from(i);
    let high = if i + 1 == count {
        1.0
    } else {
        width * f64::from(i + 1)
    };
    (low, high)
}

/// Guava's `longToDoubleFraction`: the high 52 bits of `word` as a fraction in [0, 1).
fn to_unit_interval(word: u64) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (word >> 12)) - 1.0
}

/// MurmurHash3 x64-128, as Guava computes it: both 64-bit lanes start at the *sign-extended*
/// 32-bit seed. Written here because the crates available take an unsigned 32-bit seed and
/// zero-extend it, which gives different hashes for negative seeds such as the Key-Value Table
/// router's. Returns (h1, h2); Guava's `asLong` is h1.
fn murmur3_x64_128(data: &[u8], seed: i32) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let mix_k1 = |k: u64| k.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    let mix_k2 = |k: u64| k.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    let seed = i64::from(seed) as u64;
    let (mut h1, mut h2) = (seed, seed);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let k1 = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(block[8..].try_into().expect("8 bytes"));
        h1 ^= mix_k1(k1);
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        h2 ^= mix_k2(k2);
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    if tail.len() > 8 {
        let mut k2 = 0u64;
        for (i, byte) in tail[8..].iter().enumerate() {
            k2 |= u64::from(*byte) << (8 * i);
        }
        h2 ^= mix_k2(k2);
    }
    if !tail.is_empty() {
        let mut k1 = 0u64;
        for (i, byte) in tail[..tail.len().min(8)].iter().enumerate() {
            k1 |= u64::from(*byte) << (8 * i);
        }
        h1 ^= mix_k1(k1);
    }
    let length = data.len() as u64;
    h1 ^= length;
    h2 ^= length;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_land_where_pravegas_clients_put_them() {
        // Golden value from Pravega's clients.
        assert_eq!(routing_key_position("hello"), 0.658_716_230_571_337);
        for key in ["", "a", "key-17", "ünïcode", &"long".repeat(100)] {
            let position = routing_key_position(key);
            assert!((0.0..1.0).contains(&position), "{key}: {position}");
        }
        assert_ne!(routing_key_position("key1"), routing_key_position("key2"));
    }

    #[test]
    fn table_keys_map_to_the_partition_covering_their_position() {
        for n in [1, 2, 3, 7, 16] {
            for key in [
                &b"a"[..],
                b"primary-1",
                b"\x00\x01\x02\x03\x04\x05\x06\x07",
                b"",
            ] {
                let p = key_value_table_partition(key, n);
                let (low, high) = key_space_part(p, n);
                let position = key_value_table_position(key);
                assert!(low <= position && position < high, "{key:?} in {n}");
            }
        }
        assert_eq!(key_space_part(2, 3).1, 1.0);
    }

    proptest! {
        /// For non-negative seeds the well-known crate agrees with this implementation.
        #[test]
        fn agrees_with_the_murmur3_crate(data in proptest::collection::vec(any::<u8>(), 0..100), seed in 0i32..i32::MAX) {
            let ours = murmur3_x64_128(&data, seed);
            let theirs = murmur3::murmur3_x64_128(&mut std::io::Cursor::new(&data), seed as u32).unwrap();
            prop_assert_eq!(ours.0, theirs as u64);
            prop_assert_eq!(ours.1, (theirs >> 64) as u64);
        }
    }
}
