package hub

// RenewMarks runs, for tests, one round of the refresh of presence marks that a ticker runs
// every PresenceTTL/3.
func (h *Hub) RenewMarks() { h.renewMarks() }
