use super::*;
use crate::report::testdata::synthetic_run;

#[test]
fn least_squares_recovers_a_known_slope() {
    let points: Vec<(f64, f64)> = (0..=100)
        .map(|u| (u as f64 * 10.0, 150e6 + 630_000.0 * u as f64 * 10.0))
        .collect();
    let fit = fit_line(&points).unwrap();
    assert!((fit.slope - 630_000.0).abs() < 1e-3, "{fit:?}");
    assert!((fit.intercept - 150e6).abs() < 1.0, "{fit:?}");
    assert!((fit.r_squared - 1.0).abs() < 1e-12);
    assert_eq!(fit.samples, 101);

    // Noisy data: the slope is still close, R² below 1.
    let noisy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, (x, y))| (*x, y + if i % 2 == 0 { 5e6 } else { -5e6 }))
        .collect();
    let fit = fit_line(&noisy).unwrap();
    assert!((fit.slope - 630_000.0).abs() < 2_000.0, "{fit:?}");
    assert!(fit.r_squared < 1.0 && fit.r_squared > 0.9);
}

#[test]
fn least_squares_refuses_an_undetermined_line() {
    assert_eq!(fit_line(&[]), None);
    assert_eq!(fit_line(&[(5.0, 1.0)]), None);
    assert_eq!(fit_line(&[(5.0, 1.0), (5.0, 9.0), (5.0, 3.0)]), None);
}

#[test]
fn labels() {
    assert_eq!(spectrum::percentile_label(1.0), "0%");
    assert_eq!(spectrum::percentile_label(10.0), "90%");
    assert_eq!(spectrum::percentile_label(100.0), "99%");
    assert_eq!(spectrum::percentile_label(1000.0), "99.9%");
    assert_eq!(spectrum::percentile_label(1e5), "99.999%");
    assert_eq!(bytes_label(630_000.0), "630.0 kB (615.2 KiB)");
    assert_eq!(bytes_label(6.2e9), "6.20 GB (5.77 GiB)");
}

#[test]
fn a_run_renders_every_chart_as_svg_and_png() {
    let (metrics, server) = synthetic_run();
    let dir = tempfile::tempdir().unwrap();
    let plots = render_run(dir.path(), &metrics, &server, &[Phase::Steady]).unwrap();

    let fit = plots.fit.unwrap();
    assert!((fit.slope - 630_000.0).abs() < 1_000.0, "{fit:?}");

    let names: Vec<&str> = plots.all().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "throughput",
            "latency-imap.fetch",
            "spectrum-imap.fetch",
            "latency-imap.login",
            "spectrum-imap.login",
            "server",
            "memory-per-user"
        ]
    );
    for plot in plots.all() {
        let png = std::fs::read(&plot.png_path).unwrap();
        assert!(png.len() > 5_000, "{}: {} bytes", plot.name, png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(&plot.svg_path).unwrap();
        assert_eq!(svg, plot.svg);
        assert!(svg.starts_with("<svg"), "{}", plot.name);
    }
    let svg = |name: &str| plots.all().find(|p| p.name == name).unwrap().svg.clone();
    let throughput = svg("throughput");
    for label in [
        "operations per second",
        "errors per second",
        "time since start (s)",
        "timeout",
        "imap.fetch",
    ] {
        assert!(throughput.contains(label), "throughput lacks {label:?}");
    }
    let latency = svg("latency-imap.fetch");
    assert!(latency.contains("latency (ms)") && latency.contains("p99"));
    let spectrum = svg("spectrum-imap.fetch");
    assert!(spectrum.contains("99.9%") && spectrum.contains("percentile"));
    let server_svg = svg("server");
    assert!(server_svg.contains("server memory (MiB)") && server_svg.contains("connected users"));
    let scatter = svg("memory-per-user");
    assert!(
        scatter.contains("630.0 kB"),
        "the slope is printed on the chart"
    );
}

#[test]
fn a_run_without_server_samples_has_no_server_charts() {
    let (metrics, _) = synthetic_run();
    let dir = tempfile::tempdir().unwrap();
    let plots = render_run(dir.path(), &metrics, &[], &Phase::ALL).unwrap();
    assert!(plots.server.is_none() && plots.memory_per_user.is_none() && plots.fit.is_none());
    assert_eq!(plots.commands.len(), 2);
}
