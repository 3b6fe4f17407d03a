//! `spin-host --manifest spin.toml --listen 127.0.0.1:3000 [--kv-dir DIR] [--sqlite-file FILE]
//! [--sqlite SQL|@FILE]... [--cache-dir DIR] [--threads N]`: serves a Spin application. Prints
//! `spin-host listening on http://ADDR` once ready (port 0 picks a free port); exits on
//! SIGINT/SIGTERM. `--kv-dir` keeps KV stores on disk; `--sqlite-file` keeps the `default`
//! SQLite database in a file (else it is in memory, like the KV stores); `--sqlite`, as in
//! `spin up`, runs SQL (`@FILE`: the file's) against it before serving, in order, repeatable;
//! `--cache-dir` keeps compiled components between runs; `--threads` sets the serving threads
//! (one per core by default).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use spin_host::sqlite::SqliteDb;

const USAGE: &str = "usage: spin-host [--manifest spin.toml] [--listen 127.0.0.1:3000] \
     [--kv-dir DIR] [--sqlite-file FILE] [--sqlite SQL|@FILE]... [--cache-dir DIR] [--threads N]";

struct Args {
    manifest: PathBuf,
    listen: SocketAddr,
    kv_dir: Option<PathBuf>,
    sqlite_file: Option<PathBuf>,
    sqlite: Vec<String>,
    cache_dir: Option<PathBuf>,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        manifest: PathBuf::from("spin.toml"),
        listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
        kv_dir: None,
        sqlite_file: None,
        sqlite: Vec::new(),
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
            "--sqlite-file" => args.sqlite_file = Some(PathBuf::from(value()?)),
            "--sqlite" => args.sqlite.push(value()?),
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
    let result = open_sqlite(&args).and_then(|sqlite| {
        spin_host::server::run(
            &args.manifest,
            args.listen,
            args.kv_dir.as_deref(),
            sqlite,
            args.cache_dir.as_deref(),
            args.threads,
        )
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("spin-host: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The `default` database, with the `--sqlite` arguments run against it.
fn open_sqlite(args: &Args) -> anyhow::Result<SqliteDb> {
    let sqlite = SqliteDb::open(args.sqlite_file.as_deref())?;
    for argument in &args.sqlite {
        sqlite.run_startup(argument).map_err(|error| error.context("--sqlite"))?;
    }
    Ok(sqlite)
}
