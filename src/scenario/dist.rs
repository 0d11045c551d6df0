//! Random quantities in scenarios: think times, message sizes, action counts. A scenario says
//! `{exponential: {mean: 2s}}` and the engine draws from it with the user's own RNG, so every
//! draw is reproducible from the run seed.

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp, LogNormal};
use serde::{Deserialize, Serialize};

use super::units::{ByteSize, HumanDuration};

/// A plain count (messages, actions, recipients).
pub type Count = u64;

/// What a distribution can produce: anything that maps to and from a float.
pub trait Quantity: Copy {
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// Largest value a scenario may ask for (and that sampling ever returns): beyond it a
    /// typo becomes an out-of-memory abort or an overflow, not a load test.
    const LIMIT: f64;
    /// `LIMIT` as a scenario writes it.
    const LIMIT_TEXT: &'static str;
}

impl Quantity for HumanDuration {
    const LIMIT: f64 = 7.0 * 24.0 * 3600.0;
    const LIMIT_TEXT: &'static str = "7 days";
    fn to_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
    fn from_f64(v: f64) -> Self {
        HumanDuration(std::time::Duration::from_secs_f64(v.max(0.0)))
    }
}

impl Quantity for ByteSize {
    const LIMIT: f64 = 1024.0 * 1024.0 * 1024.0;
    const LIMIT_TEXT: &'static str = "1GiB";
    fn to_f64(self) -> f64 {
        self.0 as f64
    }
    fn from_f64(v: f64) -> Self {
        ByteSize(v.max(0.0).round() as u64)
    }
}

impl Quantity for Count {
    const LIMIT: f64 = 1_000_000.0;
    const LIMIT_TEXT: &'static str = "1000000";
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v.max(0.0).round() as u64
    }
}

/// A distribution as written in YAML. `max` caps long tails (a log-normal size without a cap
/// occasionally asks for a message no server accepts).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Dist<T> {
    Fixed(T),
    Uniform {
        min: T,
        max: T,
    },
    Exponential {
        mean: T,
        #[serde(default)]
        max: Option<T>,
    },
    Lognormal {
        median: T,
        sigma: f64,
        #[serde(default)]
        max: Option<T>,
    },
}

impl<T: Quantity> Dist<T> {
    /// Checks parameters once at load time so that sampling never fails.
    pub fn validate(&self) -> Result<(), String> {
        let given: &[Option<T>] = &match *self {
            Dist::Fixed(v) => [Some(v), None],
            Dist::Uniform { min, max } => [Some(min), Some(max)],
            Dist::Exponential { mean, max } => [Some(mean), max],
            Dist::Lognormal { median, max, .. } => [Some(median), max],
        };
        if given.iter().flatten().any(|v| v.to_f64() > T::LIMIT) {
            return Err(format!(
                "a value is above the limit of {} (values this large are typos)",
                T::LIMIT_TEXT
            ));
        }
        match *self {
            Dist::Fixed(_) => Ok(()),
            Dist::Uniform { min, max } if min.to_f64() > max.to_f64() => {
                Err("uniform: `min` is larger than `max`".into())
            }
            Dist::Uniform { .. } => Ok(()),
            Dist::Exponential { mean, .. } if mean.to_f64() <= 0.0 => {
                Err("exponential: `mean` must be above zero".into())
            }
            Dist::Exponential { .. } => Ok(()),
            Dist::Lognormal { median, sigma, .. } => {
                if median.to_f64() <= 0.0 {
                    Err("lognormal: `median` must be above zero".into())
                } else if !(sigma.is_finite() && sigma >= 0.0) {
                    Err("lognormal: `sigma` must be a non-negative number".into())
                } else {
                    Ok(())
                }
            }
        }
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> T {
        let (value, cap) = match *self {
            Dist::Fixed(v) => return v,
            Dist::Uniform { min, max } => {
                let (lo, hi) = (min.to_f64(), max.to_f64());
                let v = if hi > lo {
                    rng.random_range(lo..=hi)
                } else {
                    lo
                };
                (v, None)
            }
            Dist::Exponential { mean, max } => {
                let exp = Exp::new(1.0 / mean.to_f64()).expect("validated");
                (exp.sample(rng), max)
            }
            Dist::Lognormal { median, sigma, max } => {
                let ln = LogNormal::new(median.to_f64().ln(), sigma).expect("validated");
                (ln.sample(rng), max)
            }
        };
        let capped = match cap {
            Some(cap) => value.min(cap.to_f64()),
            None => value,
        };
        // Long tails (a large sigma) are cut at the limit rather than overflowing.
        T::from_f64(capped.min(T::LIMIT))
    }

    /// Expected value, used for capacity estimates and sanity warnings.
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed(v) => v.to_f64(),
            Dist::Uniform { min, max } => (min.to_f64() + max.to_f64()) / 2.0,
            Dist::Exponential { mean, .. } => mean.to_f64(),
            Dist::Lognormal { median, sigma, .. } => median.to_f64() * (sigma * sigma / 2.0).exp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg32;
    use std::time::Duration;

    #[test]
    fn values_past_the_limit_are_refused_and_tails_are_cut() {
        let huge: Dist<ByteSize> = Dist::Fixed(ByteSize(3 << 30));
        assert!(huge.validate().unwrap_err().contains("1GiB"));
        let many: Dist<Count> = Dist::Uniform {
            min: 1,
            max: u64::MAX,
        };
        assert!(many.validate().is_err());
        let wild: Dist<HumanDuration> = Dist::Lognormal {
            median: HumanDuration(Duration::from_millis(100)),
            sigma: 1000.0,
            max: None,
        };
        assert!(wild.validate().is_ok());
        let mut rng = Pcg32::seed_from_u64(1);
        for _ in 0..100 {
            assert!(wild.sample(&mut rng).0 <= Duration::from_secs(7 * 24 * 3600));
        }
    }

    #[test]
    fn samples_stay_in_range_and_have_the_right_mean() {
        let mut rng = Pcg32::seed_from_u64(7);
        let uniform: Dist<Count> = Dist::Uniform { min: 2, max: 5 };
        let draws: Vec<u64> = (0..10_000).map(|_| uniform.sample(&mut rng)).collect();
        assert!(draws.iter().all(|v| (2..=5).contains(v)));
        assert!(draws.contains(&2) && draws.contains(&5));

        let exp: Dist<HumanDuration> = Dist::Exponential {
            mean: HumanDuration(Duration::from_secs(2)),
            max: None,
        };
        let mean = (0..20_000)
            .map(|_| exp.sample(&mut rng).0.as_secs_f64())
            .sum::<f64>()
            / 20_000.0;
        assert!((mean - 2.0).abs() < 0.1, "mean {mean}");

        let ln: Dist<ByteSize> = Dist::Lognormal {
            median: ByteSize(10_000),
            sigma: 1.0,
            max: Some(ByteSize(50_000)),
        };
        let mut sizes: Vec<u64> = (0..20_001).map(|_| ln.sample(&mut rng).0).collect();
        sizes.sort_unstable();
        assert!(sizes.iter().all(|&s| s <= 50_000));
        let median = sizes[10_000] as f64;
        assert!((median - 10_000.0).abs() < 500.0, "median {median}");
    }

    #[test]
    fn same_seed_same_draws() {
        let dist: Dist<ByteSize> = Dist::Lognormal {
            median: ByteSize(4096),
            sigma: 1.2,
            max: None,
        };
        let a: Vec<u64> = {
            let mut rng = Pcg32::new(42, 17);
            (0..100).map(|_| dist.sample(&mut rng).0).collect()
        };
        let b: Vec<u64> = {
            let mut rng = Pcg32::new(42, 17);
            (0..100).map(|_| dist.sample(&mut rng).0).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn validation_catches_bad_parameters() {
        let bad: Dist<Count> = Dist::Uniform { min: 5, max: 2 };
        assert!(bad.validate().unwrap_err().contains("min"));
        let bad: Dist<ByteSize> = Dist::Lognormal {
            median: ByteSize(0),
            sigma: 1.0,
            max: None,
        };
        assert!(bad.validate().is_err());
    }
}
