package push

import "testing"

// TestPublicOnly: the sender's dialer refuses every address of the server's own networks,
// whatever name led to it.
func TestPublicOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"142.250.185.74:443": true, "[2a00:1450:4001:82b::200a]:443": true,
		"127.0.0.1:443": false, "10.0.0.8:443": false, "192.168.1.1:443": false, "172.16.5.5:443": false,
		"169.254.169.254:80": false, "100.64.1.1:443": false, "[::1]:443": false, "[fd00::1]:443": false,
		"[fe80::1]:443": false, "0.0.0.0:443": false, "[::ffff:127.0.0.1]:443": false,
		"198.18.0.1:443": false, "192.0.2.1:443": false, "240.1.2.3:443": false, "0.1.2.3:443": false,
		"[::127.0.0.1]:443": false, "[64:ff9b::a00:1]:443": false, "[2001:db8::1]:443": false,
	} {
		if err := publicOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("%s: got %v, want allowed %v", addr, err, ok)
		}
	}
}

// TestEndpointHost: a subscription's endpoint is refused at once when its host is not public
// however it is spelled: any case, a trailing dot, IPv4 in inet_aton's forms (decimal, hex,
// octal, shortened), percent-encoded, a reserved range. These were accepted, and only the
// dialer refused them (TestPublicOnly).
func TestEndpointHost(t *testing.T) {
	for _, ep := range []string{
		"https://LOCALHOST./", "https://2130706433/", "https://0x7f.1/", "https://0177.0.0.1/", "https://127.1/",
		"https://198.18.0.1/", "https://100.64.0.1/", "https://0x7F000001/", "https://127.0.0.1./", "https://10.0.0.1../",
		"https://0/", "https://0x/", "https://169.254.169.254/", "https://[::ffff:7f00:1]/", "https://[fe80::1%25eth0]/",
		"https://%31%32%37.0.0.1/", "https://api.localhost/", "https://intranet/", "https://1.2.3.256/",
		"https://1.2.3.08/", "https://4294967296/", "https://push.example.1/", "https://a..example.com/",
		"https://１２７.０.０.１/push", "https://127.0.0.１/", "https://127．0．0．1/", "https://127。0。0。1/",
		"https://[::ffff:0:7f00:1]/", "https://[::ffff:0:a00:1]/",
	} {
		if _, err := parseEndpoint(ep, false); err == nil {
			t.Errorf("endpoint %s: accepted, want refused", ep)
		}
	}
	for _, ep := range []string{
		"https://fcm.googleapis.com/fcm/send/abc", "https://updates.push.services.mozilla.com./wpush/v2/x",
		"https://WEB.PUSH.APPLE.COM/QAbc", "https://8.8.8.8/x", "https://134744072/x", "https://[2a00:1450:4001:82b::200a]/x",
		"https://push.example.com:8443/x", "https://0x1a.example.com/x",
	} {
		if _, err := parseEndpoint(ep, false); err != nil {
			t.Errorf("endpoint %s: %v, want accepted", ep, err)
		}
	}
}
