//! What the facade's tests share besides the fake server of `cerebrum-testkit`: waiting for a
//! client status.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use cerebrum_realtime::Status;
use cerebrum_testkit::fake_server::SOON;
use tokio::sync::watch;

/// Waits until the status watch shows `want`.
pub async fn wait_status(status: &mut watch::Receiver<Status>, want: Status) {
    let reached = tokio::time::timeout(SOON, status.wait_for(|s| *s == want))
        .await
        .map(|r| r.is_ok());
    assert!(
        matches!(reached, Ok(true)),
        "status never became {want}, is {}",
        *status.borrow()
    );
}
