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

// AfterCommit has f run, for tests, between each message.send's commit and its ack.
func (h *Hub) AfterCommit(f func(chatID, seq int64)) { h.afterCommit.Store(&f) }

// BeforeFollow has f run, for tests, before each chat.added received is followed: what
// happens between a join and its chat.added reaching this instance.
func (h *Hub) BeforeFollow(f func(userID, chatID int64)) { h.beforeFollow.Store(&f) }

// BeforeHelloDone has f run, for tests, when a hello has read its user's chats for the last
// time: what reaches the connection then waits for the hello.
func (h *Hub) BeforeHelloDone(f func(userID int64)) { h.beforeHelloDone.Store(&f) }

// CatchUp has, for tests, each of the user's connections read every chat it follows from the
// store, as after a broker reconnect.
func (h *Hub) CatchUp(userID int64) {
	for _, c := range h.userConns(userID) {
		c.catchUpAll()
	}
}

// SentUpTo is, for tests, the lowest seq of a chat up to which the user's connections have
// sent (or acked) every message.
func (h *Hub) SentUpTo(userID, chatID int64) int64 {
	low := int64(-1)
	for _, c := range h.userConns(userID) {
		c.mu.Lock()
		if st := c.streams[chatID]; st != nil && (low < 0 || st.sent < low) {
			low = st.sent
		}
		c.mu.Unlock()
	}
	return low
}

// SendsInFlight is, for tests, how many message.sends the user's connections count as not yet
// acked or failed.
func (h *Hub) SendsInFlight(userID int64) int {
	n := 0
	for _, c := range h.userConns(userID) {
		c.mu.Lock()
		for _, k := range c.sending {
			n += k
		}
		c.mu.Unlock()
	}
	return n
}

// EarlyFrames is, for tests, how many frames the user's connections hold for their hellos
// (chat.added and others that came while the hello was built).
func (h *Hub) EarlyFrames(userID int64) int {
	n := 0
	for _, c := range h.userConns(userID) {
		c.mu.Lock()
		n += len(c.early)
		c.mu.Unlock()
	}
	return n
}

// AuditMembers runs, for tests, two reads of the users' chats as the audit does: the second
// mends what the first found too.
func (h *Hub) AuditMembers() { h.auditMembers(h.auditMembers(nil)) }
