//! Charts for the books, drawn on the server as SVG (no script, no fonts to fetch): grouped
//! bars for money in and out per month, and one bar split into parts for "where each euro
//! went". Every chart has a title and a description for screen readers, each shape its own
//! tooltip, and the page beside it a table with the same figures.

use std::fmt::Write;

use cooper_ledger::{format_amount, Currency};

/// Colours of the series and parts, in order (readable on white, distinct in greyscale order).
const PALETTE: [&str; 8] = [
    "#1f6f8b", "#e07a1f", "#5b8c2a", "#8e44ad", "#c0392b", "#7f8c8d", "#b8860b", "#2c3e50",
];

/// The colour of the `i`-th series or part.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A round top for the scale: 1, 2 or 5 times a power of ten, at least `max`.
fn nice_top(max: i64) -> i64 {
    if max <= 0 {
        return 100;
    }
    let mut p = 1i64;
    while p.saturating_mul(10) <= max {
        p *= 10;
    }
    [1, 2, 5, 10]
        .iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10 * p)
}

/// Grouped bars: one group per label (a month), one bar per series. Negative values are drawn
/// as zero-height bars (their figure is still in the tooltip and the table).
pub fn grouped_bars(
    id: &str,
    title: &str,
    labels: &[String],
    series: &[(&str, Vec<i64>)],
    currency: Currency,
) -> String {
    let (w, h) = (640.0_f64, 260.0_f64);
    let (left, right, top, bottom) = (64.0, 8.0, 28.0, 36.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .max()
        .unwrap_or(0);
    let top_value = nice_top(max);
    let amount = |v: i64| format!("{} {currency}", format_amount(v, currency));
    let mut desc = String::new();
    for (i, l) in labels.iter().enumerate() {
        let parts: Vec<String> = series
            .iter()
            .map(|(n, v)| format!("{n} {}", amount(v.get(i).copied().unwrap_or(0))))
            .collect();
        let _ = write!(desc, "{l}: {}. ", parts.join(", "));
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc.trim())
    );
    // Grid lines and the scale.
    for step in 0..=4 {
        let v = top_value * step / 4;
        let y = top + plot_h - plot_h * step as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d0d7de" stroke-width="1"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#444">{}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0,
            esc(&format_amount(v, currency))
        );
    }
    let groups = labels.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8 / series.len().max(1) as f64).min(28.0);
    for (i, label) in labels.iter().enumerate() {
        let gx = left + group_w * i as f64 + (group_w - bar_w * series.len() as f64) / 2.0;
        for (k, (name, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0);
            let bh = plot_h * v.max(0) as f64 / top_value as f64;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar_w:.1}" height="{bh:.1}" fill="{}"><title>{}</title></rect>"#,
                gx + bar_w * k as f64,
                top + plot_h - bh,
                colour(k),
                esc(&format!("{label}: {name} {}", amount(v)))
            );
        }
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#222">{}</text>"##,
            left + group_w * (i as f64 + 0.5),
            h - bottom + 16.0,
            esc(label)
        );
    }
    // The legend, along the top.
    let mut x = left;
    for (k, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            s,
            r##"<rect x="{x:.1}" y="8" width="12" height="12" fill="{}"/><text x="{:.1}" y="18" font-size="12" fill="#222">{}</text>"##,
            colour(k),
            x + 16.0,
            esc(name)
        );
        x += 24.0 + 7.0 * name.chars().count() as f64;
    }
    s.push_str("</svg>");
    s
}

/// One bar split into parts in proportion (each part's share of the whole, to a tenth of a
/// percent), with a legend listing part, amount and share. Parts at or below zero are left
/// out of the bar and kept in the legend.
pub fn split_bar(id: &str, title: &str, parts: &[(String, i64)], currency: Currency) -> String {
    let total: i64 = parts.iter().map(|(_, v)| (*v).max(0)).sum();
    let w = 640.0_f64;
    let bar_h = 36.0;
    let legend_top = 52.0;
    let h = legend_top + 20.0 * parts.len() as f64 + 8.0;
    let share = |v: i64| -> String {
        if total <= 0 {
            return "—".into();
        }
        // Tenths of a percent, rounded half up, in integers.
        let tenths = (v.max(0) as i128 * 1000 + total as i128 / 2) / total as i128;
        format!("{}.{} %", tenths / 10, tenths % 10)
    };
    let amount = |v: i64| format!("{} {currency}", format_amount(v, currency));
    let desc: Vec<String> = parts
        .iter()
        .map(|(n, v)| format!("{n} {} ({})", amount(*v), share(*v)))
        .collect();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(&desc.join("; "))
    );
    if total <= 0 {
        let _ = write!(
            s,
            r##"<rect x="0" y="8" width="{w}" height="{bar_h}" fill="#eef1f4"/><text x="8" y="31" font-size="13" fill="#444">nothing to split this month</text>"##
        );
    }
    let mut x = 0.0_f64;
    for (i, (name, v)) in parts.iter().enumerate() {
        if *v > 0 && total > 0 {
            let pw = w * *v as f64 / total as f64;
            let _ = write!(
                s,
                r#"<rect x="{x:.2}" y="8" width="{pw:.2}" height="{bar_h}" fill="{}"><title>{}</title></rect>"#,
                colour(i),
                esc(&format!("{name}: {} ({})", amount(*v), share(*v)))
            );
            x += pw;
        }
        let y = legend_top + 20.0 * i as f64;
        let _ = write!(
            s,
            r##"<rect x="0" y="{:.1}" width="12" height="12" fill="{}"/><text x="18" y="{:.1}" font-size="13" fill="#222">{}</text><text x="{w}" y="{:.1}" font-size="13" text-anchor="end" fill="#222">{}</text>"##,
            y,
            colour(i),
            y + 11.0,
            esc(name),
            y + 11.0,
            esc(&format!("{} · {}", amount(*v), share(*v)))
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_round_and_cover_the_top_value() {
        assert_eq!(nice_top(0), 100);
        assert_eq!(nice_top(1), 1);
        assert_eq!(nice_top(64150), 100000);
        assert_eq!(nice_top(12000), 20000);
        assert_eq!(nice_top(45000), 50000);
    }

    #[test]
    fn text_is_escaped_and_every_bar_has_its_figure() {
        let svg = grouped_bars(
            "c",
            "In & out",
            &["2026-10".into(), "2026-11".into()],
            &[("in", vec![30000, 64150]), ("<out>", vec![20000, -500])],
            Currency::EUR,
        );
        assert!(svg.contains("In &amp; out"));
        assert!(svg.contains("&lt;out&gt;"));
        assert!(!svg.contains("<out>"));
        assert!(svg.contains("2026-11: in 641.50 EUR"));
        assert!(svg.contains("2026-11: &lt;out&gt; -5.00 EUR"));
        assert_eq!(
            svg.matches("<rect").count(),
            4 + 2,
            "four bars, two legend keys"
        );
    }

    #[test]
    fn a_split_bar_gives_each_part_its_share_in_tenths() {
        let svg = split_bar(
            "w",
            "Where it went",
            &[
                ("infrastructure".into(), 2050),
                ("labour".into(), 5209),
                ("carried over".into(), 0),
            ],
            Currency::EUR,
        );
        // 2050 / 7259 = 28.24 %, 5209 / 7259 = 71.76 %.
        assert!(svg.contains("20.50 EUR · 28.2 %"), "{svg}");
        assert!(svg.contains("52.09 EUR · 71.8 %"), "{svg}");
        assert!(svg.contains("0.00 EUR · 0.0 %"));
        let empty = split_bar("e", "Nothing", &[], Currency::GBP);
        assert!(empty.contains("nothing to split"));
    }
}
