"""Product analytics over the operator's own records: timelines, funnels, cohorts, anomalies,
segments and revenue, computed by the same code on live traffic and on simulated months."""
