//! `spin-host --manifest spin.toml --listen 127.0.0.1:3000 [--kv-dir DIR] [--cache-dir DIR]
//! [--threads N]`: serves a Spin application. Prints `spin-host listening on http://ADDR` once
//! ready (port 0 picks a free port); exits on SIGINT/SIGTERM. `--kv-dir` keeps KV stores on
//! disk; `--cache-dir` keeps compiled components between runs; `--threads` sets the serving
//! threads (one per core by default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: spin-host [--manifest spin.toml] [--listen 127.0.0.1:3000] \
     [--kv-dir DIR] [--cache-dir DIR] [--threads N]";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    kv_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        kv_dir: None,
        cache_dir: None,
        threads: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| argv.next()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--manifest" | "-f" => args.manifest = PathBuf::from(value()?),
            "--listen" => {
                let listen = value()?;
                args.listen = listen.parse().map_err(|e| format!("--listen {listen}: {e}"))?;
            }
            "--kv-dir" => args.kv_dir = Some(PathBuf::from(value()?)),
            "--cache-dir" => args.cache_dir = Some(PathBuf::from(value()?)),
            "--threads" => {
                let threads = value()?;
                args.threads = match threads.parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--threads {threads}: not a positive number")),
                };
            }
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
    let result = spin_host::server::run(
        &args.manifest,
        args.listen,
        args.kv_dir.as_deref(),
        args.cache_dir.as_deref(),
        args.threads,
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("spin-host: {error:#}");
            ExitCode::FAILURE
        }
    }
}
