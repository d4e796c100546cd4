// Command readprobe reads a chat's history over REST, -n times from -c goroutines, as the demo
// user, and prints the server's CPU per read (from process_cpu_seconds_total) and the latency.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wschat/chat/internal/client"
)

func cpu(url string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	log.Fatal("no process_cpu_seconds_total")
	return 0
}

func main() {
	url := flag.String("url", "", "server")
	n := flag.Int("n", 4000, "reads")
	c := flag.Int("c", 4, "goroutines")
	path := flag.String("path", "", "the path read (default: the newest 50 messages of the demo user's first chat)")
	flag.Parse()
	ctx := context.Background()
	cl := client.New(*url)
	if err := cl.Login(ctx, "first@example.com", "password"); err != nil {
		log.Fatal(err)
	}
	p := *path
	if p == "" {
		var chats struct {
			Chats []struct {
				ID int64 `json:"id"`
			} `json:"chats"`
		}
		if err := cl.Do(ctx, http.MethodGet, "/api/v1/chats", nil, &chats); err != nil {
			log.Fatal(err)
		}
		p = fmt.Sprintf("/api/v1/chats/%d/messages?limit=50", chats.Chats[0].ID)
	}
	before := cpu(*url)
	start := time.Now()
	lat := make([][]time.Duration, *c)
	var wg sync.WaitGroup
	for g := range *c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range *n / *c {
				t := time.Now()
				if err := cl.Do(ctx, http.MethodGet, p, nil, nil); err != nil {
					log.Fatal(err)
				}
				lat[g] = append(lat[g], time.Since(t))
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	fmt.Printf("%s: %d reads in %.1f s (%.0f/s), server CPU %.1f µs per read, p50 %.2f ms, p99 %.2f ms\n", p, len(all), took.Seconds(),
		float64(len(all))/took.Seconds(), (cpu(*url)-before)/float64(len(all))*1e6,
		float64(all[len(all)/2].Microseconds())/1000, float64(all[len(all)*99/100].Microseconds())/1000)
}
