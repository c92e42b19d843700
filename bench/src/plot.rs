//! The PNG plot: one panel per table row, a bar per topology (median) with a min–max bar.
//!
//! Text is drawn with ab_glyph from the DejaVu Sans font embedded in the binary (crate
//! `dejavu`), so the plot renders the same on machines without any system fonts.

use std::{path::Path, sync::Once};

use anyhow::{anyhow, Result};
use plotters::{
    coord::Shift,
    prelude::*,
    style::{
        text_anchor::{HPos, Pos, VPos},
        FontStyle,
    },
};

use crate::{
    report::{fmt_value, Results, Row, TopologyStatus},
    topology::Role,
};

const PANEL_HEIGHT: u32 = 250;
const WIDTH: u32 = 1400;
const HEADER: u32 = 70;
const COLUMNS: usize = 2;

fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

fn color(role: Role) -> RGBColor {
    match role {
        Role::Floor => RGBColor(150, 150, 150),
        Role::Netd => RGBColor(31, 119, 180),
        Role::Docker => RGBColor(255, 127, 14),
        Role::DockerOnNetd => RGBColor(44, 160, 44),
    }
}

pub fn draw(results: &Results, path: &Path) -> Result<()> {
    register_fonts();
    let panel_rows = results.rows.len().div_ceil(COLUMNS).max(1);
    let height = HEADER + PANEL_HEIGHT * panel_rows as u32;
    let root = BitMapBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let (header, body) = root.split_vertically(HEADER);
    let names: Vec<&str> = results.topologies.iter().map(|t| t.name.name()).collect();
    let title = format!("{} — {}", names.join(" vs "), results.date);
    let sub = format!(
        "{} · {} rounds × {} s · median, whiskers min–max",
        results.machine.describe(),
        results.settings.plan.rounds,
        results.settings.plan.secs
    );
    header
        .draw(&Text::new(title, (16, 10), ("sans-serif", 24).into_font().style(FontStyle::Bold)))
        .map_err(|e| anyhow!("plot: {e}"))?;
    header.draw(&Text::new(sub, (16, 42), ("sans-serif", 15).into_font())).map_err(|e| anyhow!("plot: {e}"))?;

    let panels = body.split_evenly((panel_rows, COLUMNS));
    for (row, area) in results.rows.iter().zip(panels.iter()) {
        draw_panel(row, &results.topologies, area).map_err(|e| anyhow!("plot panel {}: {e}", row.id))?;
    }
    root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    row: &Row,
    topologies: &[TopologyStatus],
    area: &DrawingArea<DB, Shift>,
) -> Result<(), Box<dyn std::error::Error + 'static>>
where
    DB::ErrorType: 'static,
{
    let n = topologies.len().max(1) as i32;
    let summaries: Vec<_> =
        topologies.iter().map(|t| row.results.get(t.name.name()).and_then(|s| s.as_ref())).collect();
    let top = summaries.iter().flatten().map(|s| s.max).fold(0.0_f64, f64::max);
    let y_max = if top > 0.0 { top * 1.22 } else { 1.0 };
    // A derived difference (a network's cost) can come out below zero on a noisy machine.
    let bottom = summaries.iter().flatten().map(|s| s.min).fold(0.0_f64, f64::min);
    let y_min = if bottom < 0.0 { bottom * 1.22 } else { 0.0 };
    let arrow = if row.higher_is_better { "↑ higher is better" } else { "↓ lower is better" };
    let pin = match row.pinning.as_deref() {
        Some("same_cpu") => " · same CPU",
        Some("cross_cpu") => " · cross CPU",
        _ => "",
    };
    let caption = format!("{} {}{pin}   ({arrow})", row.metric, row.unit);

    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 17))
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..(n as f64 - 0.5), y_min..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .y_labels(5)
        .y_label_formatter(&|v| fmt_value(*v))
        .x_labels(n as usize)
        .x_label_formatter(&|v| {
            // Topology i sits at x = i; other key points get no label.
            let i = v.round();
            if (v - i).abs() > 0.01 || i < 0.0 {
                return String::new();
            }
            topologies.get(i as usize).map(|t| t.name.name().to_string()).unwrap_or_default()
        })
        .label_style(("sans-serif", 14))
        .draw()?;

    for (i, (t, s)) in topologies.iter().zip(&summaries).enumerate() {
        let x = i as f64;
        match s {
            Some(s) => {
                let c = color(t.role);
                let bar = Rectangle::new([(x - 0.3, 0.0), (x + 0.3, s.median)], c.mix(0.85).filled());
                chart.draw_series(std::iter::once(bar))?;
                chart.draw_series(std::iter::once(ErrorBar::new_vertical(
                    x,
                    s.min,
                    s.median,
                    s.max,
                    BLACK.stroke_width(1),
                    12,
                )))?;
                chart.draw_series(std::iter::once(Text::new(
                    fmt_value(s.median),
                    (x, s.max + y_max * 0.02),
                    TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))?;
            }
            None => {
                let why = crate::report::short_status(t, row).unwrap_or_else(|| "failed".into());
                chart.draw_series(std::iter::once(Text::new(
                    why,
                    (x, y_max * 0.1),
                    TextStyle::from(("sans-serif", 14).into_font())
                        .color(&RGBColor(160, 40, 40))
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )))?;
            }
        }
    }
    Ok(())
}

/// The convergence figure: for each cluster size, the share of (container, other host) pairs
/// answered within x ms of `run`'s start (solid) and of its return (dashed).
pub fn draw_convergence(series: &[(usize, Vec<f64>, Vec<f64>)], path: &Path) -> Result<()> {
    register_fonts();
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("plot: {e}"))?;
    let max = series.iter().flat_map(|(_, a, b)| a.iter().chain(b)).copied().fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("netd overlay convergence: other hosts answer the new container's name", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..max * 1.05, 0.0..1.0)
        .map_err(|e| anyhow!("plot: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("share of (container, host) pairs")
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    let palette = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
    for (i, (hosts, from_run, after_return)) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        for (samples, dashed) in [(from_run, false), (after_return, true)] {
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len().max(1) as f64;
            let points: Vec<(f64, f64)> = sorted.iter().enumerate().map(|(k, v)| (*v, (k + 1) as f64 / n)).collect();
            let label = format!("{hosts} hosts, from run {}", if dashed { "returned" } else { "start" });
            let style = color.stroke_width(2);
            let drawn = match dashed {
                false => chart.draw_series(LineSeries::new(points, style)),
                true => chart.draw_series(DashedLineSeries::new(points, 6, 4, style)),
            };
            drawn
                .map_err(|e| anyhow!("plot: {e}"))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| anyhow!("plot: {e}"))?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
