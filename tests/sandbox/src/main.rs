//! `sandbox [--port N | --listen 127.0.0.1:N] [--token T] [--max-queue N]`: runs the sandbox
//! service until SIGINT or SIGTERM. Prints exactly one line, `sandbox listening on
//! http://127.0.0.1:PORT`, and on stderr what bounds a run's memory on this machine. The token
//! may also come from `SANDBOX_TOKEN`; with one, requests need `Authorization: Bearer <token>`.
//! The queue bound may come from `SANDBOX_MAX_QUEUE`.

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage: sandbox [--port N | --listen 127.0.0.1:N] [--token T] [--max-queue N]\n\
  --port N      listen on 127.0.0.1:N (0, the default, picks a free port)\n\
  --listen ADDR listen on ADDR, which must be a loopback address\n\
  --token T     require Authorization: Bearer T (default: $SANDBOX_TOKEN, else none)\n\
  --max-queue N let N requests wait for a run slot, answer 503 beyond (default:\n\
                $SANDBOX_MAX_QUEUE, else 8)";

struct Args {
    listen: String,
    token: Option<String>,
    max_queue: Option<usize>,
}

fn queue_size(value: &str) -> Result<usize, String> {
    value.parse().map_err(|_| format!("--max-queue needs a number, not {value:?}"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut listen = None;
    let mut token = std::env::var("SANDBOX_TOKEN").ok().filter(|t| !t.is_empty());
    let mut max_queue = match std::env::var("SANDBOX_MAX_QUEUE") {
        Ok(v) if !v.is_empty() => Some(queue_size(&v).map_err(|e| format!("SANDBOX_MAX_QUEUE: {e}"))?),
        _ => None,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| args.next()).ok_or(format!("{flag} needs a value"));
        let addr = match flag.as_str() {
            "--port" => {
                let port: u16 = value()?.parse().map_err(|_| "--port needs a number from 0 to 65535".to_owned())?;
                format!("127.0.0.1:{port}")
            }
            "--listen" => value()?,
            "--token" => {
                token = Some(value()?).filter(|t| !t.is_empty());
                continue;
            }
            "--max-queue" => {
                max_queue = Some(queue_size(&value()?)?);
                continue;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        };
        if listen.replace(addr).is_some() {
            return Err("give --port or --listen once".to_owned());
        }
    }
    Ok(Args { listen: listen.unwrap_or_else(|| "127.0.0.1:0".to_owned()), token, max_queue })
}

/// Registers SIGINT and SIGTERM handlers now; the returned future ends on either.
fn signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sandbox: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut options = sandbox::Options { token: args.token, ..sandbox::Options::default() };
    if let Some(n) = args.max_queue {
        options.limits.max_queued_runs = n;
    }
    let service = match sandbox::start_with(args.listen.as_str(), options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sandbox: cannot start on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("sandbox: {}", service.memory_bound());
    // Install the handlers before announcing, so a signal sent right after the line is seen.
    let result = runtime.block_on(async {
        let waiting = signals()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "sandbox listening on {}", service.url())?;
        stdout.flush()?;
        drop(stdout);
        waiting.await;
        Ok::<(), std::io::Error>(())
    });
    service.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}
