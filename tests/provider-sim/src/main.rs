//! `provider-sim [--port N | --listen 127.0.0.1:N]`: runs the simulator until SIGINT or
//! SIGTERM. Prints exactly one line, `provider-sim listening on http://127.0.0.1:PORT`.

use std::io::Write;
use std::process::ExitCode;

const USAGE: &str = "usage: provider-sim [--port N | --listen 127.0.0.1:N]\n\
  --port N      listen on 127.0.0.1:N (0, the default, picks a free port)\n\
  --listen ADDR listen on ADDR, which must be a loopback address";

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<String, String> {
    let mut listen = None;
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
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        };
        if listen.replace(addr).is_some() {
            return Err("give --port or --listen once".to_owned());
        }
    }
    Ok(listen.unwrap_or_else(|| "127.0.0.1:0".to_owned()))
}

/// Registers SIGINT and SIGTERM handlers now; the returned future ends on either.
/// Must run inside a Tokio runtime.
#[cfg(unix)]
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

#[cfg(not(unix))]
fn signals() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn main() -> ExitCode {
    let addr = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("provider-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let sim = match provider_sim::start(addr.as_str()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("provider-sim: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("provider-sim: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Install the handlers before announcing, so a signal sent right after the line is seen.
    let result = runtime.block_on(async {
        let waiting = signals()?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "provider-sim listening on {}", sim.url())?;
        stdout.flush()?;
        drop(stdout);
        waiting.await;
        Ok::<(), std::io::Error>(())
    });
    sim.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provider-sim: {e}");
            ExitCode::FAILURE
        }
    }
}
