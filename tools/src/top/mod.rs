//! `nexus top`: a live terminal view of a running engine, read from its metrics endpoint.
//!
//! The first scrape happens before the terminal is touched, so an endpoint that cannot be
//! reached is a one-line error with a hint and nothing else. Then a scraper thread fetches
//! `GET /metrics` every `--interval` (on a fixed schedule; a slow scrape delays the next one,
//! never doubles it up) and hands each result over a channel; the main thread owns the
//! terminal, the [`model::Model`] and the keys, and redraws when a scrape lands or the
//! terminal is resized. A failed scrape shows "disconnected" and the scraper keeps trying.
//! `q`, Esc and Ctrl-C quit. The terminal is restored by a guard, so also on an error or a
//! panic. `NO_COLOR` (non-empty) turns every colour off.
//!
//! `scrape` owns the HTTP and the text format, `model` the figures and rates, `view` the
//! drawing; this file only wires them together.

mod model;
mod scrape;
mod view;

use crate::Failure;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use model::{Model, Snapshot};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use std::io::Stdout;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How long the key loop waits for input before it looks for a new scrape.
const KEY_POLL: Duration = Duration::from_millis(50);

/// `nexus top`'s arguments.
#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// The metrics endpoint of a running `nexus run` (its `[server] metrics_listen`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9379")]
    metrics: String,
    /// How often to scrape and redraw: `500ms`, `1s`, `2m` or a number of seconds.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::bench::parse_duration)]
    interval: Duration,
}

/// One scrape's outcome: when it answered and what, or why it failed.
type Scraped = (Instant, Result<Snapshot, String>);

/// Runs `nexus top` until a quit key; see the module documentation.
pub fn top(args: TopArgs) -> Result<(), Failure> {
    let timeout = args.interval.clamp(Duration::from_secs(1), Duration::from_secs(5));
    let mut model = Model::new();
    model.update(Instant::now(), first_scrape(&args.metrics, timeout)?);
    let scrapes = spawn_scraper(args.metrics.clone(), args.interval, timeout)?;
    let settings = view::Settings { addr: args.metrics, interval: args.interval, palette: view::Palette::from_env() };
    let (_guard, mut terminal) = enter_terminal()?;
    run_loop(&mut terminal, &mut model, &settings, &scrapes).map_err(|e| {
        Failure::runtime(format!("top: terminal error: {e}; hint: run `nexus top` in an interactive terminal"))
    })
}

/// The scrape before the view starts: a failure here is the command's error.
fn first_scrape(addr: &str, timeout: Duration) -> Result<Snapshot, Failure> {
    let hint = "hint: start `nexus run` with [server] metrics_listen set, or pass --metrics ADDR";
    let body = scrape::fetch(addr, timeout)
        .map_err(|e| Failure::runtime(format!("cannot reach the metrics endpoint at {addr} ({e}); {hint}")))?;
    let samples = scrape::parse(&body);
    if !samples.iter().any(|s| s.name.starts_with("nexus_")) {
        return Err(Failure::runtime(format!(
            "the endpoint at {addr} answers, but with no nexus metrics; hint: pass --metrics with the \
             `metrics_listen` address of a `nexus run`"
        )));
    }
    Ok(Snapshot::from_samples(&samples))
}

/// Starts the thread that scrapes every `interval` until the receiver is dropped.
fn spawn_scraper(addr: String, interval: Duration, timeout: Duration) -> Result<Receiver<Scraped>, Failure> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("nexus-top-scrape".into())
        .spawn(move || {
            let mut next = Instant::now() + interval;
            loop {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                let result = scrape::fetch(&addr, timeout)
                    .map(|body| Snapshot::from_samples(&scrape::parse(&body)))
                    .map_err(|e| e.to_string());
                if tx.send((Instant::now(), result)).is_err() {
                    return;
                }
                next = (next + interval).max(Instant::now());
            }
        })
        .map_err(|e| {
            Failure::runtime(format!("top: cannot start the scrape thread: {e}; hint: check the thread limit"))
        })?;
    Ok(rx)
}

/// Draws, takes keys and scrapes until a quit key.
fn run_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    model: &mut Model,
    settings: &view::Settings,
    scrapes: &Receiver<Scraped>,
) -> std::io::Result<()> {
    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|frame| view::draw(frame, model, settings))?;
            dirty = false;
        }
        if event::poll(KEY_POLL)? {
            match event::read()? {
                Event::Key(key) if quits(&key) => return Ok(()),
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        loop {
            match scrapes.try_recv() {
                Ok((at, Ok(snap))) => model.update(at, snap),
                Ok((_, Err(why))) => model.disconnected(why),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(std::io::Error::other("the scrape thread stopped")),
            }
            dirty = true;
        }
    }
}

/// `q`, Esc or Ctrl-C (raw mode turns Ctrl-C into a key instead of SIGINT).
fn quits(key: &KeyEvent) -> bool {
    key.kind == KeyEventKind::Press
        && match key.code {
            KeyCode::Char('q') | KeyCode::Esc => true,
            KeyCode::Char('c') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        }
}

/// Restores the terminal (raw mode off, main screen, cursor shown) when dropped.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
        let _ = crossterm::execute!(std::io::stdout(), LeaveAlternateScreen, crossterm::cursor::Show);
    }
}

/// Raw mode, the alternate screen and a ratatui terminal over stdout.
fn enter_terminal() -> Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>), Failure> {
    let fail = |e: std::io::Error| {
        Failure::runtime(format!(
            "top: cannot drive the terminal ({e}); hint: run `nexus top` in an interactive terminal"
        ))
    };
    terminal::enable_raw_mode().map_err(fail)?;
    let guard = TerminalGuard;
    crossterm::execute!(std::io::stdout(), EnterAlternateScreen, crossterm::cursor::Hide).map_err(fail)?;
    let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(fail)?;
    Ok((guard, terminal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_esc_and_ctrl_c_quit() {
        let key = |code, modifiers| KeyEvent::new(code, modifiers);
        assert!(quits(&key(KeyCode::Char('q'), KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Esc, KeyModifiers::NONE)));
        assert!(quits(&key(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        assert!(!quits(&key(KeyCode::Char('c'), KeyModifiers::NONE)));
        assert!(!quits(&key(KeyCode::Char('x'), KeyModifiers::NONE)));
    }

    #[test]
    fn an_unreachable_endpoint_is_one_line_with_a_hint() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr = format!("127.0.0.1:{port}");
        let e = first_scrape(&addr, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.status, 1);
        assert_eq!(
            e.message,
            format!(
                "cannot reach the metrics endpoint at {addr} (connection refused); hint: start `nexus run` \
                 with [server] metrics_listen set, or pass --metrics ADDR"
            )
        );
    }
}
