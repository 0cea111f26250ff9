//! `nexus top`'s screen: draws a [`Model`] into a ratatui frame, and owns nothing else.
//!
//! From the top: a title line (address, interval, link state, keys), a totals line, the
//! per-shard table, the busiest agents, and a sparkline of the total message rate. Every
//! style comes from [`Palette`]: with colour off (`NO_COLOR`) it hands out styles with no
//! foreground or background colour at all, only bold and reverse, so nothing on screen is
//! coloured. Figures the endpoint did not give (or rates before the second scrape) show as
//! `-`; nothing here fails.

use super::model::{Link, Model, ShardFigures, Snapshot};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Sparkline, Table};
use ratatui::Frame;
use std::time::Duration;

/// Styles, with or without colour; see the module documentation.
#[derive(Clone, Copy, Debug)]
pub struct Palette {
    colour: bool,
}

impl Palette {
    /// Colour on unless `NO_COLOR` is set to something non-empty (<https://no-color.org>).
    pub fn from_env() -> Self {
        Self::new(!matches!(std::env::var_os("NO_COLOR"), Some(v) if !v.is_empty()))
    }

    /// A palette with colour on or off.
    pub fn new(colour: bool) -> Self {
        Self { colour }
    }

    fn fg(self, colour: Color) -> Style {
        if self.colour {
            Style::new().fg(colour)
        } else {
            Style::new()
        }
    }

    fn heading(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    fn alarm(self) -> Style {
        let style = self.fg(Color::Red).add_modifier(Modifier::BOLD);
        if self.colour {
            style
        } else {
            style.add_modifier(Modifier::REVERSED)
        }
    }
}

/// What the view shows besides the model.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The metrics address being scraped.
    pub addr: String,
    /// The scrape interval.
    pub interval: Duration,
    /// The styles.
    pub palette: Palette,
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, model: &Model, settings: &Settings) {
    let empty = Snapshot::default();
    let snap = model.snapshot().unwrap_or(&empty);
    let shards_height = snap.shards.len().max(1) as u16 + 3;
    let busiest_height = snap.busiest.len().max(1) as u16 + 3;
    let [title, totals, shards, busiest, spark] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(shards_height),
        Constraint::Length(busiest_height),
        Constraint::Min(4),
    ])
    .areas(frame.area());
    let p = settings.palette;
    frame.render_widget(Paragraph::new(title_line(model, settings)), title);
    frame.render_widget(Paragraph::new(totals_line(model, snap, p)), totals);
    frame.render_widget(shard_table(model, snap, p), shards);
    frame.render_widget(busiest_table(snap, p), busiest);
    draw_sparkline(frame, spark, model, p);
}

fn title_line(model: &Model, settings: &Settings) -> Line<'static> {
    let p = settings.palette;
    let mut spans = vec![
        Span::styled("nexus top", p.fg(Color::Cyan).add_modifier(Modifier::BOLD)),
        Span::raw(format!("  {}  every {}  ", settings.addr, duration(settings.interval))),
    ];
    match &model.link {
        Link::Connected => spans.push(Span::styled("connected", p.fg(Color::Green))),
        Link::Disconnected(why) => spans.push(Span::styled(format!("disconnected ({why}); retrying"), p.alarm())),
    }
    spans.push(Span::raw("  q quits"));
    Line::from(spans)
}

fn totals_line(model: &Model, snap: &Snapshot, p: Palette) -> Line<'static> {
    let dead = snap.total(|s| Some(s.dead.values().sum()));
    let cells = [
        ("messages/s", rate(model.rates.total_messages())),
        ("commands/s", rate(model.rates.total_commands())),
        ("clients", count(snap.total(|s| s.clients))),
        ("agents", count(snap.total(|s| s.agents))),
        ("queued", count(snap.total(|s| s.queued))),
        ("dead letters", count(dead)),
    ];
    let mut spans = Vec::new();
    for (name, value) in cells {
        spans.push(Span::styled(format!("{name} "), p.heading()));
        spans.push(Span::raw(format!("{value}   ")));
    }
    Line::from(spans)
}

fn shard_table(model: &Model, snap: &Snapshot, p: Palette) -> Table<'static> {
    let header = ["shard", "msgs/s", "queued", "agents", "p50", "p99", "clients", "cmds/s", "dead letters"];
    let mut rows: Vec<Row> = snap
        .shards
        .iter()
        .map(|(shard, fig)| {
            Row::new(vec![
                shard.to_string(),
                rate(model.rates.messages.get(shard).copied()),
                count(fig.queued),
                count(fig.agents),
                seconds(fig.p50),
                seconds(fig.p99),
                count(fig.clients),
                rate(model.rates.commands.get(shard).copied()),
                dead_letters(fig),
            ])
        })
        .collect();
    if rows.is_empty() {
        rows.push(Row::new(vec!["-".to_owned(), "no figures yet".to_owned()]));
    }
    let widths = [5, 10, 8, 8, 9, 9, 7, 9].map(Constraint::Length);
    let widths = widths.into_iter().chain([Constraint::Fill(1)]);
    Table::new(rows, widths)
        .header(Row::new(header).style(p.heading()))
        .block(Block::bordered().title(" shards (routing latency: enqueue to dispatch) "))
}

/// Non-zero dead letters as `reason count`, total first: `7: stopped 4, shed 3`.
fn dead_letters(fig: &ShardFigures) -> String {
    let total: f64 = fig.dead.values().sum();
    let mut by_reason: Vec<(&String, &f64)> = fig.dead.iter().filter(|(_, v)| **v > 0.0).collect();
    if by_reason.is_empty() {
        return if fig.dead.is_empty() { "-".into() } else { "0".into() };
    }
    by_reason.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = by_reason.iter().map(|(r, v)| format!("{r} {}", count(Some(**v)))).collect();
    format!("{}: {}", count(Some(total)), parts.join(", "))
}

fn busiest_table(snap: &Snapshot, p: Palette) -> Table<'static> {
    let mut rows: Vec<Row> = snap
        .busiest
        .iter()
        .map(|(agent, shard, depth)| Row::new(vec![agent.clone(), shard.to_string(), count(Some(*depth))]))
        .collect();
    if rows.is_empty() {
        rows.push(Row::new(vec!["(every mailbox is empty)".to_owned()]));
    }
    let widths = [Constraint::Length(24), Constraint::Length(6), Constraint::Fill(1)];
    Table::new(rows, widths)
        .header(Row::new(["agent", "shard", "mailbox"]).style(p.heading()))
        .block(Block::bordered().title(" busiest agents (by mailbox depth) "))
}

fn draw_sparkline(frame: &mut Frame, area: Rect, model: &Model, p: Palette) {
    let data: Vec<u64> = model.history.iter().copied().collect();
    let (now, max) = (data.last().copied().unwrap_or(0), data.iter().copied().max().unwrap_or(0));
    let title = format!(" messages/s, last {} samples: now {now}, max {max} ", data.len());
    let block = Block::bordered().title(title);
    // The newest samples when the area is narrower than the history.
    let width = block.inner(area).width as usize;
    let shown = &data[data.len().saturating_sub(width)..];
    frame.render_widget(Sparkline::default().block(block).data(shown).style(p.fg(Color::Green)), area);
}

/// A rate: one decimal below 10, whole numbers above; `-` when unknown.
fn rate(value: Option<f64>) -> String {
    match value {
        Some(v) if v < 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
        None => "-".into(),
    }
}

/// A count or gauge as a whole number; `-` when unknown.
fn count(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

/// Seconds in the unit that suits them: `850ns`, `12.5µs`, `3.2ms`, `1.05s`; `-` when unknown
/// or zero (an empty histogram: nothing sampled yet).
fn seconds(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v <= 0.0 => "-".into(),
        Some(v) if v < 1e-6 => format!("{:.0}ns", v * 1e9),
        Some(v) if v < 1e-3 => format!("{:.1}µs", v * 1e6),
        Some(v) if v < 1.0 => format!("{:.1}ms", v * 1e3),
        Some(v) => format!("{v:.2}s"),
    }
}

/// An interval as the flag takes it: `500ms`, `1s`, `1.5s`.
fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::scrape::parse;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use std::time::Instant;

    fn screen(model: &Model, colour: bool) -> (String, ratatui::buffer::Buffer) {
        let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
        let settings =
            Settings { addr: "127.0.0.1:9379".into(), interval: Duration::from_secs(1), palette: Palette::new(colour) };
        terminal.draw(|f| draw(f, model, &settings)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let text = (0..buffer.area.height)
            .map(|y| (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect::<String>() + "\n")
            .collect();
        (text, buffer)
    }

    fn model() -> Model {
        let text = |n: u64| {
            format!(
                "nexus_messages_delivered_total{{shard=\"0\"}} {n}\nnexus_server_commands_total{{shard=\"0\"}} {n}\n\
                 nexus_server_connections{{shard=\"0\"}} 2\nnexus_queued_messages{{shard=\"0\"}} 5\n\
                 nexus_routing_latency_seconds{{shard=\"0\",quantile=\"0.99\"}} 0.0000125\n\
                 nexus_dead_letters_total{{shard=\"0\",reason=\"stopped\"}} 4\n\
                 nexus_dead_letters_total{{shard=\"0\",reason=\"shed\"}} 0\n\
                 nexus_mailbox_depth{{shard=\"0\",agent=\"0:3.1\"}} 5\n"
            )
        };
        let mut model = Model::new();
        let t0 = Instant::now();
        model.update(t0, Snapshot::from_samples(&parse(&text(100))));
        model.update(t0 + Duration::from_secs(1), Snapshot::from_samples(&parse(&text(350))));
        model
    }

    #[test]
    fn the_screen_shows_rates_shards_agents_and_the_link() {
        let mut model = model();
        let (text, _) = screen(&model, true);
        for want in ["nexus top", "connected", "messages/s 250", "commands/s 250", "clients 2", "0:3.1", "12.5µs"] {
            assert!(text.contains(want), "no {want:?} on\n{text}");
        }
        assert!(text.contains("4: stopped 4"), "dead letters by reason:\n{text}");
        assert!(text.contains("last 1 samples: now 250"), "{text}");
        model.disconnected("connection refused".into());
        let (text, _) = screen(&model, true);
        assert!(text.contains("disconnected (connection refused); retrying"), "{text}");
    }

    #[test]
    fn no_colour_means_no_colour_anywhere() {
        let (_, coloured) = screen(&model(), true);
        assert!(coloured.content.iter().any(|c| c.fg != Color::Reset), "the coloured view has colour");
        let mut model = model();
        model.disconnected("timed out".into());
        let (_, plain) = screen(&model, false);
        assert!(plain.content.iter().all(|c| c.fg == Color::Reset && c.bg == Color::Reset), "a colour with NO_COLOR");
    }

    #[test]
    fn figures_read_well() {
        assert_eq!(seconds(Some(850e-9)), "850ns");
        assert_eq!(seconds(Some(0.0)), "-", "nothing sampled");
        assert_eq!(seconds(Some(3.25e-3)), "3.2ms");
        assert_eq!(seconds(Some(1.5)), "1.50s");
        assert_eq!((rate(Some(2.25)), rate(Some(1234.4)), rate(None)), ("2.2".into(), "1234".into(), "-".into()));
        assert_eq!(
            (duration(Duration::from_millis(500)), duration(Duration::from_secs(2))),
            ("500ms".into(), "2s".into())
        );
    }
}
