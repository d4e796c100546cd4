package hub

// PendingAcks is, for tests, the largest set of acknowledged seqs still awaiting their live
// event, over the user's connections and chats.
func (h *Hub) PendingAcks(userID int64) int {
	n := 0
	for _, c := range h.userConns(userID) {
		c.mu.Lock()
		for _, st := range c.streams {
			n = max(n, len(st.acked))
		}
		c.mu.Unlock()
	}
	return n
}
