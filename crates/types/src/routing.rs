//! Routing keys: where an event with a given key goes in a stream's key space, computed exactly
//! as Pravega's clients compute it, so that events routed here and by the official clients land
//! in the same segments.

/// Seed of the routing hash: Java's `"EventRouter".hashCode()`.
const ROUTING_SEED: u32 = 1_741_865_571;

/// The position of `key` in the key space [0, 1): murmur3 x64-128 over the key's UTF-16 code
/// units as little-endian bytes, seeded as Pravega seeds it; the first 64-bit word's high 52 bits
/// become the fraction of a double in [1, 2), minus 1.
///
/// This is the Java client's computation. The official Rust client (0.3.x) sizes its UTF-16
/// buffer by the UTF-8 length, so for keys with non-ASCII characters it hashes trailing zero code
/// units and lands elsewhere; for ASCII keys all agree.
pub fn routing_key_position(key: &str) -> f64 {
    let mut bytes = Vec::with_capacity(key.len() * 2);
    for unit in key.encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    let hash = murmur3::murmur3_x64_128(&mut std::io::Cursor::new(&bytes), ROUTING_SEED)
        .expect("hashing an in-memory buffer cannot fail");
    // The murmur3 crate returns h1 in the low 64 bits (Guava's `asLong`).
    let h1 = hash as u64;
    f64::from_bits(0x3FF0_0000_0000_0000 | (h1 >> 12)) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_land_where_pravegas_clients_put_them() {
        // Golden value from Pravega's clients.
        assert_eq!(routing_key_position("hello"), 0.658_716_230_571_337);
        for key in ["", "a", "key-17", "ünïcode", &"long".repeat(100)] {
            let position = routing_key_position(key);
            assert!((0.0..1.0).contains(&position), "{key}: {position}");
            assert_eq!(position, routing_key_position(key), "deterministic");
        }
        assert_ne!(routing_key_position("key1"), routing_key_position("key2"));
    }
}
