//! How long reading the wizard's questions off each sample takes (the real samples in
//! `tests/fixtures/samples`): the median of 200 runs per sample.

use std::time::Instant;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for p in names {
        let text = std::fs::read_to_string(&p).unwrap();
        let mut times = Vec::new();
        let mut options = 0;
        for _ in 0..200 {
            let t = Instant::now();
            let f = cooper_recipe::wizard::derive(&text).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e6);
            options = f.options.len();
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{}: {} lines, {options} options, derive median {:.0} µs",
            p.file_name().unwrap().to_string_lossy(),
            text.lines().count(),
            times[times.len() / 2]
        );
    }
}
