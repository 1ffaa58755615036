//! What the store's test files share: running a test on both backends.

/// Runs `body` on a fresh SQLite store and on a fresh Postgres store.
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let (_dir, store) = testing::sqlite().await;
                ($body)(store).await;
            }
            #[tokio::test]
            async fn postgres() {
                match testing::postgres().await {
                    Some(store) => ($body)(store).await,
                    None => assert!(
                        !testing::require_postgres(),
                        "COOPER_TEST_POSTGRES is unset: run scripts/setup-postgres and export the URL it prints"
                    ),
                }
            }
        }
    };
}
