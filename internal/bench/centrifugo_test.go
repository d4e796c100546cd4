package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

func TestCentrifugoToken(t *testing.T) {
	cc := CentrifugoConfig{Secret: "s3cret"}
	tok := cc.token("user-7")
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q: want three parts", tok)
	}
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if got, want := parts[2], base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	var claims struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(b, &claims); err != nil || claims.Sub != "user-7" || claims.Exp == 0 {
		t.Errorf("claims %s: %v", b, err)
	}
}

// TestCentrifugoFrames feeds a client the lines Centrifugo sends (several in one frame, one
// JSON object a line) and checks what it counts: publications by offset (duplicates and
// order), publish replies as acks or errors, other replies to their caller.
func TestCentrifugoFrames(t *testing.T) {
	st := &Stats{}
	d := &centDevice{stats: st, got: newSeqSet(0), pending: map[int64]int64{}, calls: map[int64]chan []byte{}}
	d.pending[5], d.pending[6] = now(), now()
	reply := make(chan []byte, 1)
	d.calls[9] = reply
	frame := strings.Join([]string{
		`{"push":{"channel":"chat:r","pub":{"data":{"t":1,"p":"xx"},"offset":1}}}`,
		`{"push":{"channel":"chat:r","pub":{"data":{"t":1,"p":"xx"},"offset":3}}}`,
		`{"push":{"channel":"chat:r","pub":{"data":{"t":1,"p":"xx"},"offset":2}}}`, // late: out of order
		`{"push":{"channel":"chat:r","pub":{"data":{"t":1,"p":"xx"},"offset":3}}}`, // again: a duplicate
		`{"push":{"channel":"chat:r","join":{"info":{"user":"u"}}}}`,
		`{"id":5,"publish":{}}`,
		`{"id":6,"error":{"code":100,"message":"internal server error"}}`,
		`{"id":9,"history":{"epoch":"e","offset":3}}`,
	}, "\n")
	for _, line := range strings.Split(frame, "\n") {
		d.handle([]byte(line))
	}
	if got := st.Delivered.Load(); got != 3 {
		t.Errorf("delivered %d, want 3", got)
	}
	if st.Dups.Load() != 1 || st.OutOfOrder.Load() != 1 {
		t.Errorf("duplicates %d, out of order %d; want 1 and 1", st.Dups.Load(), st.OutOfOrder.Load())
	}
	if st.Acked.Load() != 1 || st.ErrorFrames.Load() != 1 || st.Ack.Count() != 1 {
		t.Errorf("acked %d (%d timed), errors %d; want 1, 1, 1", st.Acked.Load(), st.Ack.Count(), st.ErrorFrames.Load())
	}
	if d.Missing(0, 3) != 0 || !d.Has(0, 3) || d.Has(0, 4) {
		t.Errorf("missing up to 3: %d; has 3: %v; has 4: %v", d.Missing(0, 3), d.Has(0, 3), d.Has(0, 4))
	}
	select {
	case b := <-reply:
		if v, _ := intAfter(b, keyOffset); v != 3 {
			t.Errorf("history reply %s: offset %d", b, v)
		}
	default:
		t.Error("the history reply did not reach its caller")
	}
}
