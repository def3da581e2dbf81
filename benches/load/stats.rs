//! Latency summaries.

pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// Percentiles of microsecond samples.
pub fn summarize(mut samples: Vec<u64>) -> Summary {
    samples.sort_unstable();
    let at =
        |q: f64| samples.get(((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1))).copied().unwrap_or(0);
    Summary { count: samples.len(), p50: at(0.50), p99: at(0.99), max: samples.last().copied().unwrap_or(0) }
}

pub fn ms(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}
