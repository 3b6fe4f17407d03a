//! `spin-host --manifest spin.toml --listen 127.0.0.1:3000 [--kv-dir DIR] [--cache-dir DIR]`:
//! serves a Spin application. Prints `spin-host listening on http://ADDR` once ready (port 0
//! picks a free port); exits on SIGINT/SIGTERM. `--kv-dir` keeps KV stores on disk;
//! `--cache-dir` keeps compiled components between runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str =
    "usage: spin-host [--manifest spin.toml] [--listen 127.0.0.1:3000] [--kv-dir DIR]";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    kv_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        kv_dir: None,
        cache_dir: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| argv.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--manifest" | "-f" => args.manifest = PathBuf::from(value()?),
            "--listen" => {
                let listen = value()?;
                args.listen = listen
                    .parse()
                    .map_err(|e| format!("--listen {listen}: {e}"))?;
            }
            "--kv-dir" => args.kv_dir = Some(PathBuf::from(value()?)),
            "--cache-dir" => args.cache_dir = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("spin-host: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(spin_host::server::run(
        &args.manifest,
        args.listen,
        args.kv_dir.as_deref(),
        args.cache_dir.as_deref(),
    ));
    // Instances still streaming are abandoned: shutting down must not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("spin-host: {error:#}");
            ExitCode::FAILURE
        }
    }
}
