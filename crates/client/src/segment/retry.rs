//! Bounded retries with exponential back-off and jitter.

use std::time::Duration;

/// How often and how patiently a failed connection (or request) is tried again.
///
/// Attempt `n` (counting from 1) that fails is followed by a pause drawn uniformly from
/// `[d/2, d]`, where `d = min(initial_delay × 2^(n-1), max_delay)`; the jitter keeps many
/// clients from reconnecting in step. After `max_attempts` failed attempts the last error is
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 10 attempts, 50 ms doubling up to 5 s: about 15 s of trying in all.
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Whether another attempt may follow `failed_attempts` failed ones.
    pub fn allows_another(&self, failed_attempts: u32) -> bool {
        failed_attempts < self.max_attempts.max(1)
    }

    /// The pause after the `failed_attempts`-th failure (≥ 1), before the next attempt.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(31);
        let full = self
            .initial_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter())
    }
}

/// A number in `[0, 1)`, random enough to spread reconnections; not for anything else.
fn jitter() -> f64 {
    let random = uuid::Uuid::new_v4().as_u128();
    // The low 53 bits of a v4 UUID are random (its version and variant bits lie above them),
    // and 53 random bits make an evenly spread f64 in [0, 1).
    let bits = u64::try_from(random & ((1 << 53) - 1)).unwrap_or(0);
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
        };
        for (failed, full) in [(1, 100), (2, 200), (3, 400), (4, 700), (40, 700)] {
            for _ in 0..50 {
                let delay = policy.delay(failed);
                let full = Duration::from_millis(full);
                assert!(delay >= full / 2 && delay <= full, "{failed}: {delay:?}");
            }
        }
    }

    #[test]
    fn attempts_are_bounded() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(policy.allows_another(2));
        assert!(!policy.allows_another(3));
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(!zero.allows_another(1));
        assert!(zero.allows_another(0));
    }

    #[test]
    fn jitter_is_a_fraction() {
        for _ in 0..1000 {
            let value = jitter();
            assert!((0.0..1.0).contains(&value));
        }
    }
}
