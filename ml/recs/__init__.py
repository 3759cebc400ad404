"""Product recommendations: data, candidates, ranking, rules, baselines, evaluation, train, score, report."""
