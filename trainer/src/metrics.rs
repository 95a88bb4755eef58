//! The metrics log: one JSON object per line (`metrics.jsonl`), appended across resumes, and an
//! SVG plot of training and held-out loss drawn from it with plotters.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// Errors from the metrics log or the plot.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The log could not be opened, written or read.
    #[error("metrics log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The plot could not be drawn.
    #[error("plot {path}: {message}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// `pretrain` or `sft`.
    pub stage: String,
    /// `train` (the step's batch) or `heldout` (the fixed held-out batches).
    pub split: String,
    /// Optimizer step the value belongs to.
    pub step: usize,
    /// Mean next-token cross-entropy (nats per loss-bearing token).
    pub loss: f64,
    /// Learning rate of the step (train lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Sequence-wise balance loss of the step, where enabled (train lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_loss: Option<f64>,
    /// Busiest expert's load over the mean load, averaged over MoE blocks (train lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_load_ratio: Option<f64>,
    /// Milliseconds the step took (forward, backward, optimizer; train lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_ms: Option<f64>,
    /// Loss-bearing tokens consumed so far.
    pub tokens: u64,
}

/// An append-only JSONL writer.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsLog {
    /// Open (or create) the log for appending.
    pub fn open(path: &Path) -> Result<Self, MetricsError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| MetricsError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Append one record (any serialisable line: [`Record`], GRPO's step records) and flush it.
    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<(), MetricsError> {
        let line = serde_json::to_string(record).map_err(|e| MetricsError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        writeln!(self.out, "{line}")
            .and_then(|()| self.out.flush())
            .map_err(|source| MetricsError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// Read every record of a log; the last line for a `(split, step)` wins (resumes may repeat steps).
pub fn read(path: &Path) -> Result<Vec<Record>, MetricsError> {
    let file = File::open(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut records: Vec<Record> = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| MetricsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let Ok(record) = serde_json::from_str::<Record>(&line) else {
            continue; // a line cut short by an interruption
        };
        records.retain(|r| !(r.split == record.split && r.step == record.step));
        records.push(record);
    }
    records.sort_by_key(|r| r.step);
    Ok(records)
}

/// Every line of a log as JSON; for a `(split, step)` repeated by a resume the last line wins.
/// Lines cut short by an interruption are skipped.
pub fn read_values(path: &Path) -> Result<Vec<serde_json::Value>, MetricsError> {
    let file = File::open(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut lines: Vec<serde_json::Value> = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| MetricsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        lines.retain(|v| !(v["split"] == value["split"] && v["step"] == value["step"]));
        lines.push(value);
    }
    lines.sort_by_key(|v| v["step"].as_u64().unwrap_or(0));
    Ok(lines)
}

/// One curve of [`plot_lines`]: its label, its `(step, value)` points, and whether to mark
/// each point (sparse series such as held-out evaluations). Series without markers are
/// per-step curves: drawn faint as measured, with their trailing mean over
/// [`SMOOTHING_WINDOW`] steps on top.
pub type Series<'a> = (&'a str, Vec<(f64, f64)>, bool);

/// Steps in the trailing mean drawn over per-step curves.
pub const SMOOTHING_WINDOW: usize = 10;

/// The trailing mean of `points` over `window` points (fewer at the start): point `i` becomes
/// the mean of points `i + 1 − window ..= i`.
pub fn trailing_mean(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, (x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (*x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// Width of the legend panel right of the chart, pixels.
const LEGEND_WIDTH: u32 = 250;

/// Draw named series into an SVG at `path`, the y axis from 0 (or the lowest value, when
/// negative) to the highest. The legend sits in a panel right of the chart, off the data.
pub fn plot_lines(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[Series<'_>],
) -> Result<(), MetricsError> {
    let plot_err = |e: &dyn std::fmt::Display| MetricsError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let points = || {
        series
            .iter()
            .flat_map(|(_, p, _)| p.iter())
            .filter(|p| p.1.is_finite())
    };
    let max_x = points().map(|p| p.0).fold(1.0f64, f64::max);
    let max_y = points().map(|p| p.1).fold(1e-3f64, f64::max);
    let min_y = points().map(|p| p.1).fold(0.0f64, f64::min);
    let pad = (max_y - min_y) * 0.05;
    let root = SVGBackend::new(path, (960 + LEGEND_WIDTH, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let (chart_area, legend_area) = root.split_horizontally(960);
    let mut chart = ChartBuilder::on(&chart_area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_x, (min_y - pad)..(max_y + pad))
        .map_err(|e| plot_err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| plot_err(&e))?;
    let palette = [
        BLUE,
        RED,
        GREEN,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(230, 140, 0),
    ];
    let mut legend: Vec<(String, RGBColor)> = Vec::new();
    for (i, (label, points, markers)) in series.iter().enumerate() {
        let color = palette[i % palette.len()];
        let points: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
        if *markers {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| plot_err(&e))?;
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(|e| plot_err(&e))?;
            legend.push((label.to_string(), color));
        } else {
            chart
                .draw_series(LineSeries::new(points.clone(), color.mix(0.25)))
                .map_err(|e| plot_err(&e))?;
            let smooth = trailing_mean(&points, SMOOTHING_WINDOW);
            chart
                .draw_series(LineSeries::new(smooth, color.stroke_width(2)))
                .map_err(|e| plot_err(&e))?;
            legend.push((format!("{label} ({SMOOTHING_WINDOW}-step mean)"), color));
        }
    }
    for (i, (label, color)) in legend.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        legend_area
            .draw(&PathElement::new(
                vec![(4, y), (28, y)],
                color.stroke_width(2),
            ))
            .map_err(|e| plot_err(&e))?;
        legend_area
            .draw(&Text::new(
                label.clone(),
                (34, y - 7),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(|e| plot_err(&e))?;
    }
    root.present().map_err(|e| plot_err(&e))
}

/// Draw the train and held-out loss curves of `records` into an SVG at `path`.
pub fn plot(records: &[Record], title: &str, path: &Path) -> Result<(), MetricsError> {
    let plot_err = |e: &dyn std::fmt::Display| MetricsError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let series = |split: &str| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter(|r| r.split == split && r.loss.is_finite())
            .map(|r| (r.step as f64, r.loss))
            .collect()
    };
    let train = series("train");
    let heldout = series("heldout");
    let max_step = records.iter().map(|r| r.step).max().unwrap_or(1).max(1) as f64;
    let max_loss = train
        .iter()
        .chain(&heldout)
        .map(|p| p.1)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;

    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_step, 0.0..max_loss)
        .map_err(|e| plot_err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss (nats/token)")
        .draw()
        .map_err(|e| plot_err(&e))?;
    chart
        .draw_series(LineSeries::new(train, &BLUE))
        .map_err(|e| plot_err(&e))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(heldout.clone(), RED.stroke_width(2)))
        .map_err(|e| plot_err(&e))?
        .label("held-out")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(heldout.into_iter().map(|p| Circle::new(p, 3, RED.filled())))
        .map_err(|e| plot_err(&e))?;
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(|e| plot_err(&e))?;
    root.present().map_err(|e| plot_err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(split: &str, step: usize, loss: f64) -> Record {
        Record {
            stage: "pretrain".into(),
            split: split.into(),
            step,
            loss,
            lr: None,
            balance_loss: None,
            max_load_ratio: None,
            step_ms: None,
            tokens: 0,
        }
    }

    #[test]
    fn appends_across_reopens_and_later_lines_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        MetricsLog::open(&path)
            .unwrap()
            .write(&record("train", 1, 3.0))
            .unwrap();
        let mut log = MetricsLog::open(&path).unwrap();
        log.write(&record("train", 2, 2.5)).unwrap();
        log.write(&record("train", 1, 2.9)).unwrap();
        let records = read(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].loss, 2.9);
    }

    #[test]
    fn the_trailing_mean_averages_the_last_points() {
        let points: Vec<(f64, f64)> = [1.0, 3.0, 5.0, 7.0]
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64, *y))
            .collect();
        let smooth = trailing_mean(&points, 2);
        assert_eq!(smooth, vec![(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]);
        assert_eq!(trailing_mean(&points, 1), points);
    }

    #[test]
    fn line_plots_put_the_legend_right_of_the_chart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reward.svg");
        let per_step: Vec<(f64, f64)> = (1..30).map(|s| (s as f64, (s % 3) as f64)).collect();
        plot_lines(
            &path,
            "t",
            "y",
            &[
                ("per step", per_step, false),
                ("held-out", vec![(0.0, 1.0), (29.0, 2.0)], true),
            ],
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("per step (10-step mean)") && svg.contains("held-out"));
        // Every legend label starts right of the 960-pixel chart.
        for label in ["per step (10-step mean)", "held-out"] {
            let at = svg.find(label).unwrap();
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let x: f64 = tag
                .split("x=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(x > 960.0, "{tag}");
        }
    }

    #[test]
    fn plots_an_svg_with_both_curves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.svg");
        let records = vec![
            record("train", 1, 3.0),
            record("train", 2, 2.0),
            record("heldout", 2, 2.2),
        ];
        plot(&records, "pretrain", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("held-out"),
            "{}",
            &svg[..200.min(svg.len())]
        );
    }
}
