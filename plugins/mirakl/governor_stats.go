package mirakl

// GovernorStats reports what the process-wide governor of a shop (the one
// every component of this process talking to baseURL and shopID shares) has
// done per operation: budget, waits, time throttled, 429 pauses. The
// operations dashboard shows it.
func GovernorStats(baseURL string, shopID int64) []BudgetStats {
	return GovernorFor(normaliseBaseURL(baseURL), shopID).Stats()
}
