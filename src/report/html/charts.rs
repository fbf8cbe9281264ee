//! Drawing: time-series charts and the matrix grid as inline SVG, through plotters' SVG
//! backend. Text is laid out with plotters' naive width estimate and drawn by the browser (no
//! font files); plotters escapes text and attribute values, and the callers only pass labels of
//! their own besides. Legends are HTML beside the SVG (see `mod.rs`), so they never cover data.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Chart size in SVG user units (the page scales it to its width).
pub const WIDTH: u32 = 1000;
pub const HEIGHT: u32 = 300;
/// Most line vertices a chart draws per series (a timeline has at most 512 points; the gap
/// filling of a hostile report is bounded by this too).
pub const MAX_VERTICES: usize = 4096;

/// Colours of the series (Tableau 10, readable on white and for most colour-blind readers).
pub const BLUE: RGBColor = RGBColor(0x1F, 0x77, 0xB4);
pub const ORANGE: RGBColor = RGBColor(0xFF, 0x7F, 0x0E);
pub const GREEN: RGBColor = RGBColor(0x2C, 0xA0, 0x2C);
pub const RED: RGBColor = RGBColor(0xD6, 0x27, 0x28);
pub const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xBD);
pub const BROWN: RGBColor = RGBColor(0x8C, 0x56, 0x4B);
pub const PINK: RGBColor = RGBColor(0xE3, 0x77, 0xC2);
pub const GREY: RGBColor = RGBColor(0x7F, 0x7F, 0x7F);
pub const OLIVE: RGBColor = RGBColor(0xBC, 0xBD, 0x22);
pub const CYAN: RGBColor = RGBColor(0x17, 0xBE, 0xCF);
pub const PALETTE: [RGBColor; 10] = [BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, GREY, OLIVE, CYAN];

/// A dashed series is drawn in its colour with the low bit of blue flipped, a colour no solid
/// series uses; the SVG's polylines of that colour then get a `stroke-dasharray` (plotters'
/// own dashed series would draw every dash as its own element).
fn dash_colour(c: RGBColor) -> RGBColor {
    RGBColor(c.0, c.1, c.2 ^ 1)
}

pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// One line: its pieces (a gap in the data breaks the line).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub colour: RGBColor,
    pub dashed: bool,
    pub segments: Vec<Vec<(f64, f64)>>,
}

/// A shaded stretch of the x axis (a warm-up, a fault window).
#[derive(Debug, Clone)]
pub struct Band {
    pub name: String,
    pub from: f64,
    pub to: f64,
    pub colour: RGBColor,
}

/// A vertical line at an instant (a fault detected, a recovery).
#[derive(Debug, Clone)]
pub struct Marker {
    pub name: String,
    pub at: f64,
    pub colour: RGBColor,
}

/// A chart over the run's time (x in seconds from the start of the run).
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    /// Scale y to the data rather than from zero (memory: a slow leak stays visible).
    pub y_fit: bool,
}

impl Chart {
    pub fn new(title: &str, y_desc: &str) -> Self {
        Self { title: title.into(), y_desc: y_desc.into(), ..Self::default() }
    }

    /// Whether any series has a point to draw.
    pub fn has_data(&self) -> bool {
        self.series.iter().any(|s| s.segments.iter().any(|seg| !seg.is_empty()))
    }
}

/// The time unit of the x axis for a run of `span_s` seconds: its divisor and name.
fn time_unit(span_s: f64) -> (f64, &'static str) {
    if span_s <= 900.0 {
        (1.0, "s")
    } else if span_s <= 6.0 * 3600.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    }
}

/// Largest magnitude drawn: a hostile report's extreme values are pinned here, which keeps
/// plotters' tick arithmetic (which overflows near the edges of f64) safe.
const LIMIT: f64 = 1e15;

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v.clamp(-LIMIT, LIMIT))
}

/// Range of the values, widened so that a flat or empty range still draws.
fn range(values: impl Iterator<Item = f64>, floor_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter_map(finite) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if floor_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-9 {
        hi = lo + if lo.abs() > 1e-9 { lo.abs() * 0.1 } else { 1.0 };
    }
    (lo, hi + (hi - lo) * 0.08)
}

/// A compact tick label: 1.5k, 2.3M, 0.25, 12, 2.5 (no trailing zeros).
pub fn short(v: f64) -> String {
    let a = v.abs();
    let (v, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 1.0 {
        1
    } else {
        2
    };
    let mut text = format!("{v:.digits$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if text == "-0" {
        text = "0".into();
    }
    text + suffix
}

/// Tick labels for an axis from `lo` to `hi`: as many decimals as its steps need (so
/// neighbouring ticks never read the same), large values as [`short`].
fn ticks(lo: f64, hi: f64) -> impl Fn(&f64) -> String {
    let step = (hi - lo) / 6.0;
    let digits = if step > 0.0 { (-step.log10()).ceil().clamp(0.0, 6.0) as usize } else { 0 };
    let large = lo.abs().max(hi.abs()) >= 1e4;
    move |v: &f64| {
        if large {
            return short(*v);
        }
        let mut text = format!("{v:.digits$}");
        if text.contains('.') {
            text = text.trim_end_matches('0').trim_end_matches('.').to_string();
        }
        if text == "-0" { "0".into() } else { text }
    }
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The chart as an `<svg>` element (or a note saying why it could not be drawn).
pub fn svg(chart: &Chart) -> String {
    let mut buf = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).and_then(|()| root.present().map_err(Into::into))
    };
    match drawn {
        Ok(()) => mark_dashes(buf, chart),
        Err(e) => format!("<p class=\"note\">chart not drawn: {}</p>", super::escape(&e.to_string())),
    }
}

fn draw(root: &DrawingArea<SVGBackend<'_>, Shift>, chart: &Chart) -> DrawResult {
    root.fill(&WHITE)?;
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.segments.iter().flatten().map(|p| p.0))
        .chain(chart.bands.iter().flat_map(|b| [b.from, b.to]))
        .chain(chart.markers.iter().map(|m| m.at));
    let (x0, x1) = range(xs, true);
    let (div, unit) = time_unit(x1 - x0);
    let ys = chart.series.iter().flat_map(|s| s.segments.iter().flatten().map(|p| p.1));
    let (y0, y1) = range(ys, !chart.y_fit);
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(x0 / div..x1 / div, y0..y1)?;
    let x_desc = format!("time since start ({unit})");
    ctx.configure_mesh()
        .x_desc(x_desc)
        .y_desc(chart.y_desc.as_str())
        .x_labels(10)
        .y_labels(6)
        .x_label_formatter(&ticks(x0 / div, x1 / div))
        .y_label_formatter(&ticks(y0, y1))
        .light_line_style(RGBColor(0xEE, 0xEE, 0xEE))
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    for b in &chart.bands {
        let (from, to) = (finite(b.from).unwrap_or(x0) / div, finite(b.to).unwrap_or(x1) / div);
        ctx.draw_series(std::iter::once(Rectangle::new([(from, y0), (to, y1)], b.colour.mix(0.18).filled())))?;
    }
    for s in &chart.series {
        let colour = if s.dashed { dash_colour(s.colour) } else { s.colour };
        for seg in &s.segments {
            let pts: Vec<(f64, f64)> =
                seg.iter().filter_map(|(x, y)| Some((finite(*x)? / div, finite(*y)?))).take(MAX_VERTICES).collect();
            if pts.len() == 1 {
                ctx.draw_series(std::iter::once(Circle::new(pts[0], 2, colour.filled())))?;
            } else {
                ctx.draw_series(LineSeries::new(pts, colour.stroke_width(2)))?;
            }
        }
    }
    for m in &chart.markers {
        let Some(at) = finite(m.at) else { continue };
        ctx.draw_series(LineSeries::new([(at / div, y0), (at / div, y1)], m.colour.stroke_width(2)))?;
    }
    Ok(())
}

/// Give the polylines of dashed series their dash pattern.
fn mark_dashes(mut svg: String, chart: &Chart) -> String {
    for s in chart.series.iter().filter(|s| s.dashed) {
        let stroke = format!("stroke=\"{}\"", hex(dash_colour(s.colour)));
        svg = svg.replace(&stroke, &format!("{stroke} stroke-dasharray=\"7 4\""));
    }
    svg
}

/// A grid of coloured cells: `rows` labels down the side, `columns` across the top, and
/// `cell(row, column)` the cell's text and colour (None leaves it blank).
pub fn grid(
    title: &str,
    rows: &[String],
    columns: &[String],
    cell: impl Fn(usize, usize) -> Option<(String, RGBColor)>,
) -> String {
    let row_h = 30u32;
    let (left, top) = (220u32, 70u32);
    let rows_n = u32::try_from(rows.len()).unwrap_or(u32::MAX).min(200);
    let cols_n = u32::try_from(columns.len()).unwrap_or(u32::MAX).clamp(1, 20);
    let height = top + rows_n * row_h + 10;
    let col_w = (WIDTH - left - 10) / cols_n;
    let mut buf = String::new();
    let drawn: DrawResult = (|| {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let centre = |style: TextStyle<'static>| style.pos(Pos::new(HPos::Center, VPos::Center));
        root.draw(&Text::new(
            title.to_string(),
            ((WIDTH / 2) as i32, 18),
            centre(("sans-serif", 20).into_text_style(&root)),
        ))?;
        for (c, name) in columns.iter().enumerate().take(cols_n as usize) {
            let x = (left + c as u32 * col_w + col_w / 2) as i32;
            root.draw(&Text::new(
                clip(name, 24),
                (x, (top - 16) as i32),
                centre(("sans-serif", 15).into_text_style(&root)),
            ))?;
        }
        for (r, name) in rows.iter().enumerate().take(rows_n as usize) {
            let y = (top + r as u32 * row_h) as i32;
            let left_style = ("sans-serif", 14).into_text_style(&root).pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(clip(name, 30), (left as i32 - 8, y + row_h as i32 / 2), left_style))?;
            for c in 0..cols_n as usize {
                let Some((text, colour)) = cell(r, c) else { continue };
                let x = (left + c as u32 * col_w) as i32;
                root.draw(&Rectangle::new(
                    [(x + 1, y + 1), (x + col_w as i32 - 1, y + row_h as i32 - 1)],
                    colour.filled(),
                ))?;
                let style =
                    ("sans-serif", 14).into_text_style(&root).color(&WHITE).pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(text, (x + col_w as i32 / 2, y + row_h as i32 / 2), style))?;
            }
        }
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => buf,
        Err(e) => format!("<p class=\"note\">grid not drawn: {}</p>", super::escape(&e.to_string())),
    }
}

/// At most `n` characters of `s` (an ellipsis marks a cut).
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_lines_and_dashes_the_dashed_ones() {
        let mut c = Chart::new("t", "y");
        c.series.push(Series {
            name: "a".into(),
            colour: BLUE,
            dashed: false,
            segments: vec![vec![(0.0, 1.0), (1.0, 2.0)]],
        });
        c.series.push(Series {
            name: "b".into(),
            colour: BLUE,
            dashed: true,
            segments: vec![vec![(0.0, 2.0), (1.0, 3.0)]],
        });
        let s = svg(&c);
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.matches("<polyline").count() >= 2);
        assert_eq!(s.matches("stroke-dasharray").count(), 1, "{s}");
    }

    #[test]
    fn hostile_values_do_not_break_a_chart() {
        let mut c = Chart::new("t", "y");
        let seg = vec![(f64::NAN, 1.0), (0.0, f64::INFINITY), (1e308, 1e308), (-5.0, -1e308)];
        c.series.push(Series { name: "a".into(), colour: RED, dashed: false, segments: vec![seg, vec![]] });
        c.bands.push(Band { name: "b".into(), from: f64::NAN, to: 1e308, colour: RED });
        let s = svg(&c);
        assert!(s.contains("<svg") || s.contains("not drawn"), "{s}");
    }

    #[test]
    fn short_labels() {
        assert_eq!(short(0.0), "0");
        assert_eq!(short(12_345.0), "12.3k");
        assert_eq!(short(2.5e6), "2.5M");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(40.0), "40");
        assert_eq!(short(0.5), "0.5");
        assert_eq!(short(1_000_000.0), "1M");
        let f = ticks(38.1, 38.4);
        assert_eq!((f(&38.15), f(&38.2)), ("38.15".to_string(), "38.2".to_string()));
        assert_eq!(ticks(0.0, 200.0)(&50.0), "50");
    }
}
