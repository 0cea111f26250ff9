//! Logging: every log line of `nexus` goes through `tracing`, printed by this subscriber.
//!
//! Lines go to stdout. An `INFO` line is printed as its bare message (status lines, the
//! placement table and the final counters read like plain output); other levels are prefixed
//! with the level and the module (`WARN nexus_server::server: ...`). The filter comes from
//! `NEXUS_LOG` (tracing's env-filter syntax, e.g. `NEXUS_LOG=debug`), `info` by default.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

struct Bare;

impl<S, N> FormatEvent<S, N> for Bare
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if *meta.level() != Level::INFO {
            write!(writer, "{} {}: ", meta.level(), meta.target())?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the subscriber (once; later calls do nothing).
pub fn init() {
    let filter = EnvFilter::try_from_env("NEXUS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .event_format(Bare)
        .try_init();
}
