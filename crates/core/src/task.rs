//! Where slow work runs: [`blocking`] moves a synchronous step (Argon2id, an OpenPGP
//! decryption, a SQLite transaction) onto the runtime's blocking pool, so the async task
//! that waits for it holds no worker thread and nothing queues behind it.

use crate::CoreError;

/// Runs `f` on the blocking pool and waits for it. A panic inside it (a bug, or a
/// dependency failing on hostile input) is an error here, never a crash.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, CoreError>
where
    F: FnOnce() -> Result<T, CoreError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(CoreError::Internal("a step failed unexpectedly".into())),
        // Only a runtime that is shutting down cancels a blocking task.
        Err(_) => Err(CoreError::Locked),
    }
}
