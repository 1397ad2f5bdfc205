//! Retrying an operation a fixed number of times, a fixed wait apart (decision 9).

use std::future::Future;
use std::time::Duration;

use crate::error::{Error, Result};

/// How often and how far apart a failed operation is tried again.
///
/// The default is Streamlit's: 3 attempts, 1 second apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    attempts: u32,
    wait: Duration,
}

impl RetryPolicy {
    /// `attempts` tries in all (at least 1), `wait` apart.
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = connections_core::RetryPolicy::new(3, Duration::from_secs(1)).unwrap();
    /// assert_eq!(policy.attempts(), 3);
    /// assert!(connections_core::RetryPolicy::new(0, Duration::ZERO).is_err());
    /// ```
    pub fn new(attempts: u32, wait: Duration) -> Result<Self> {
        if attempts == 0 {
            return Err(Error::InvalidArgument { argument: "attempts", reason: "must be at least 1, got 0".into() });
        }
        Ok(Self { attempts, wait })
    }

    /// One attempt, no retry.
    pub const NEVER: Self = Self { attempts: 1, wait: Duration::ZERO };

    /// Tries in all.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait between two tries.
    pub fn wait(&self) -> Duration {
        self.wait
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 3, wait: Duration::from_secs(1) }
    }
}

/// Runs `op` until it succeeds, fails with an error `should_retry` rejects (returned at once,
/// without calling `after`), or has failed `policy.attempts()` times. After every failed
/// retryable attempt, the last one included, `after` runs (a connection resets itself there);
/// then, unless attempts are used up, the wait.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use connections_core::{retry, Error, RetryPolicy};
/// use std::{cell::Cell, time::Duration};
/// let tries = Cell::new(0);
/// let resets = Cell::new(0);
/// let policy = RetryPolicy::new(3, Duration::from_millis(1)).unwrap();
/// let result: Result<(), Error> = retry(
///     policy,
///     || async { tries.set(tries.get() + 1); Err(Error::connection_lost("reset by peer")) },
///     Error::is_retryable,
///     |_| resets.set(resets.get() + 1),
/// ).await;
/// assert!(result.is_err());
/// assert_eq!((tries.get(), resets.get()), (3, 3));
/// # }
/// ```
pub async fn retry<T, F, Fut, P, A>(policy: RetryPolicy, mut op: F, should_retry: P, mut after: A) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
    P: Fn(&Error) -> bool,
    A: FnMut(&Error),
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(value) => return Ok(value),
            Err(error) if !should_retry(&error) => return Err(error),
            Err(error) => {
                after(&error);
                if attempt >= policy.attempts {
                    return Err(error);
                }
                tracing::warn!(%error, attempt, of = policy.attempts, "retrying after a connection failure");
                attempt += 1;
                tokio::time::sleep(policy.wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::{RetryPolicy, retry};
    use crate::Error;

    /// A refused login is tried once: repeating it may lock the user out (Snowflake does).
    #[tokio::test]
    async fn a_refused_login_is_not_retried_but_a_failed_connect_is() {
        let policy = RetryPolicy::new(3, Duration::from_millis(1)).unwrap();
        for (error, attempts) in [(Error::auth as fn(&'static str) -> Error, 1), (Error::connect, 3)] {
            let tries = Cell::new(0);
            let result: Result<(), Error> = retry(
                policy,
                || async {
                    tries.set(tries.get() + 1);
                    Err(error("no"))
                },
                Error::is_retryable,
                |_| {},
            )
            .await;
            assert!(result.is_err());
            assert_eq!(tries.get(), attempts);
        }
    }
}
