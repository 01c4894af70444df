//! `cerebrum token`: mints a development JWT (HS256) with `sub`, `name`, `exp` and, when
//! given, the `channels` claim.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `cerebrum token`.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The HS256 secret the server runs with (`--jwt-secret`).
    #[arg(long, env = "CEREBRUM_JWT_SECRET", hide_env_values = true)]
    secret: String,
    /// The user id (`sub`).
    #[arg(long)]
    user: String,
    /// The display name (`name`).
    #[arg(long)]
    name: Option<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// A channel glob the token allows (repeatable), e.g. `chat:*`.
    #[arg(long = "channel", value_name = "GLOB")]
    channels: Vec<String>,
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn run(args: &TokenArgs) -> ExitCode {
    let channels = (!args.channels.is_empty()).then(|| args.channels.clone());
    match cerebrum_server::auth::mint_hs256(
        args.secret.as_bytes(),
        &args.user,
        args.name.as_deref(),
        args.ttl_secs,
        channels,
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
