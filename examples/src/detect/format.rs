//! How the chapter writes durations, probabilities and bars.

use std::time::Duration;

/// `4.13 s`.
pub(super) fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `72 ms`.
pub(super) fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// `12.42 s` of virtual time.
pub(super) fn t(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `10^-phi`, the chance that suspecting the peer now is a mistake (as far as
/// the model fits), as a percentage or, when tiny, a power of ten.
pub(super) fn mistake(phi: f64) -> String {
    if phi < 0.005 {
        "100%".to_owned()
    } else if phi < 3.5 {
        let percent = 100.0 * 10f64.powf(-phi);
        let digits = (1 - percent.log10().floor() as i32).max(0) as usize;
        format!("{percent:.digits$}%")
    } else {
        format!("1 in 10^{}", phi.floor())
    }
}

/// A bar of `#`, two per unit of phi, cut at phi = 10 with a `>`.
pub(super) fn bar(phi: f64) -> String {
    const PER_UNIT: f64 = 2.0;
    const MAX: f64 = 10.0;
    let n = (phi.min(MAX) * PER_UNIT).round() as usize;
    let mut bar = "#".repeat(n);
    if phi > MAX {
        bar.push('>');
    }
    bar
}
