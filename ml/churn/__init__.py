"""The churn model: labels, features, baselines, LightGBM + calibration, train, score, reasons, report."""
