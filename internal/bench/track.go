package bench

import "math/bits"

// seqSet records which seqs of one chat a receiver has got, after base (the chat's last seq
// when the receiver started following it). It answers duplicates, order and what is missing.
type seqSet struct {
	base int64
	bits []uint64 // bit i: seq base+1+i
	max  int64
}

func newSeqSet(base int64) *seqSet { return &seqSet{base: base, max: base} }

// add marks seq and reports whether it was new and whether it came in order (after every
// seq seen so far). Seqs at or below base count as duplicates: they were history.
func (s *seqSet) add(seq int64) (fresh, inOrder bool) {
	if seq <= s.base {
		return false, false
	}
	i := seq - s.base - 1
	w := int(i / 64)
	for w >= len(s.bits) {
		s.bits = append(s.bits, 0)
	}
	m := uint64(1) << (i % 64)
	if s.bits[w]&m != 0 {
		return false, seq > s.max
	}
	s.bits[w] |= m
	inOrder = seq > s.max
	s.max = max(s.max, seq)
	return true, inOrder
}

// ack marks the seq of a message the receiver sent itself. The ack answers the send and may
// come before the message.new of an earlier seq (committed first, still on its way through
// the broker), so it does not move the order mark.
func (s *seqSet) ack(seq int64) {
	if seq <= s.base {
		return
	}
	i := seq - s.base - 1
	for int(i/64) >= len(s.bits) {
		s.bits = append(s.bits, 0)
	}
	s.bits[i/64] |= 1 << (i % 64)
}

func (s *seqSet) has(seq int64) bool {
	if seq <= s.base {
		return true
	}
	i := seq - s.base - 1
	w := int(i / 64)
	return w < len(s.bits) && s.bits[w]&(1<<(i%64)) != 0
}

// missing counts the seqs in (base, upto] not received.
func (s *seqSet) missing(upto int64) int64 {
	if upto <= s.base {
		return 0
	}
	n := upto - s.base
	var got int64
	full := int(n / 64)
	for w := 0; w < full && w < len(s.bits); w++ {
		got += int64(bits.OnesCount64(s.bits[w]))
	}
	if r := n % 64; r > 0 && full < len(s.bits) {
		got += int64(bits.OnesCount64(s.bits[full] & (1<<r - 1)))
	}
	return n - got
}

// contiguous is the highest seq up to which everything has been received: the cursor a
// client sends with sync.
func (s *seqSet) contiguous() int64 {
	for w, b := range s.bits {
		if b != ^uint64(0) {
			return s.base + int64(w*64+bits.TrailingZeros64(^b))
		}
	}
	return s.base + int64(len(s.bits)*64)
}
