package limit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	l := New(1, 3, 100)
	now := time.Unix(0, 0)
	for i := range 3 {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("attempt %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok || wait != time.Second {
		t.Errorf("4th attempt = %v, wait %v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Error("another key was limited")
	}
	if ok, _ := l.Allow("a", now.Add(time.Second)); !ok {
		t.Error("no token after a second")
	}
	if ok, _ := l.Peek("a", now.Add(time.Second)); ok {
		t.Error("Peek found a token that Allow had taken")
	}
	l.Reset("a")
	if ok, _ := l.Peek("a", now); !ok {
		t.Error("Reset did not forget the key")
	}
	var nl *Limiter
	if ok, _ := nl.Allow("x", now); !ok {
		t.Error("a nil limiter refused")
	}
}

func TestKeysAreCapped(t *testing.T) {
	l := New(1, 1, 1000)
	now := time.Unix(0, 0)
	for i := range 10_000 {
		l.Allow(string(rune(i+1000)), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := l.Len(); n > 1000 {
		t.Errorf("%d keys remembered, cap 1000", n)
	}
	// A busy key survives eviction of idle ones.
	l2 := New(0.001, 1, 10)
	l2.Allow("busy", now)
	for i := range 50 {
		l2.Allow(string(rune('a'+i)), now)
		now = now.Add(time.Millisecond)
	}
	if ok, _ := l2.Peek("busy", now); ok && l2.Len() > 10 {
		t.Error("cap exceeded")
	}
}

func TestAllowN(t *testing.T) {
	l := New(1, 5, 100)
	now := time.Unix(0, 0)
	if ok, _ := l.AllowN("a", 3, now); !ok {
		t.Fatal("3 of a burst of 5 refused")
	}
	// 2 left: taking 3 takes nothing and waits for the one missing.
	if ok, wait := l.AllowN("a", 3, now); ok || wait != time.Second {
		t.Errorf("3 more: %v, wait %v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.AllowN("a", 2, now); !ok {
		t.Error("the 2 left were not taken by the refusal, yet are refused")
	}
	if ok, _ := l.AllowN("b", 6, now.Add(time.Hour)); ok {
		t.Error("more than the burst allowed at once")
	}
}
