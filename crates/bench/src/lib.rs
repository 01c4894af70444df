//! The load generator behind `cerebrum bench`: scenarios that measure a server speaking the
//! bench subset of the cerebrum protocol (ping/pong, subscribe/subscribed, channel
//! publications), on loopback only.
//!
//! | scenario | what it measures |
//! |---|---|
//! | [`conns`](Scenario::Conns) | N connections subscribed to K channels: connect rate, server RSS per connection |
//! | [`fanout`](Scenario::Fanout) | N subscribers of one channel, one publisher at R msg/s: deliveries/s, losses, latency percentiles, server CPU per 1 000 deliveries |
//! | [`rooms`](Scenario::Rooms) | rooms of M clients, each publishing r msg/s: latency percentiles, server CPU per 1 000 deliveries |
//! | [`ping`](Scenario::Ping) | round-trip percentiles of pings under N connections |
//!
//! Every run is bounded in time and count. Client sockets are spread over several loopback
//! source addresses (127.0.0.2, 127.0.0.3, …) so large runs do not exhaust ephemeral ports, and
//! the open-files limit is raised as far as the hard limit allows. Server figures (RSS, CPU
//! seconds) are read from `/proc/PID/…` when the server's pid is given.
//!
//! ```no_run
//! use cerebrum_bench::{run, FanoutOptions, Scenario, Target};
//!
//! # async fn demo() -> Result<(), cerebrum_bench::BenchError> {
//! let target = Target::new("ws://127.0.0.1:8080/ws")?;
//! let report = run(&target, &Scenario::Fanout(FanoutOptions::default())).await?;
//! println!("{}", report.table());
//! println!("{}", report.json_line());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod latency;
mod link;
mod process;
mod report;
mod scenario;
mod storm;
mod target;

pub use error::BenchError;
pub use latency::LatencySummary;
pub use process::{ProcessSample, raise_open_files_limit};
pub use report::{Report, Value};
pub use scenario::{ConnsOptions, FanoutOptions, PingOptions, RoomsOptions, Scenario, run};
pub use storm::{CommandRestarter, Restarter, StormOptions, run_storm};
pub use target::Target;
