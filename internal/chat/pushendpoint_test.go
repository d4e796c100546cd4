package chat_test

import (
	"testing"

	"github.com/wschat/chat/internal/chat"
)

// TestCanonicalPushEndpoint: the spellings of one endpoint that an HTTP client sends to the
// same place are one; what differs in meaning stays apart; the canonical spelling is its own.
func TestCanonicalPushEndpoint(t *testing.T) {
	const fcm = "https://fcm.googleapis.com/fcm/send/dX%3A_A%2Bb"
	for _, tc := range []struct{ in, want string }{
		{fcm, fcm},
		{"HTTPS://FCM.GoogleAPIs.com/fcm/send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com./fcm/send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com:443/fcm/send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com:0443/fcm/send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com:/fcm/send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com/fcm/send/dX%3a_A%2bb", fcm},
		{"https://fcm.googleapis.com/%66cm/send/dX%3A%5F%41%2Bb", fcm},
		{"https://fcm.googleapis.com/fcm/send/dX%3A_A%2Bb#frag", fcm},
		{"HTTPS://FCM.GOOGLEAPIS.COM.:443/fcm/send/dX%3a_A%2bb", fcm},
		{"https://push.example", "https://push.example/"},
		{"https://push.example:8443/x", "https://push.example:8443/x"},
		{"https://push.example:08443/x", "https://push.example:8443/x"},
		{"http://push.example:80/x", "http://push.example/x"},
		{"http://push.example:443/x", "http://push.example:443/x"},
		{"https://push.example:80/x", "https://push.example:80/x"},
		{"https://wns.notify.windows.com/w/?token=AB%2bc%3d%3d", "https://wns.notify.windows.com/w/?token=AB%2Bc%3D%3D"},
		{"https://push.example/a?", "https://push.example/a?"},
		{"https://push.example/Path/%7Euser", "https://push.example/Path/~user"},
		{"https://push.example/a/%2e%2e/b", "https://push.example/b"},
		// Dot segments resolved as a server resolves them (RFC 3986 5.2.4); empty segments
		// and a trailing '/' are another resource, and stay.
		{"https://fcm.googleapis.com/fcm/./send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com/fcm/x/../send/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com/../fcm/send/%2E/dX%3A_A%2Bb", fcm},
		{"https://fcm.googleapis.com/fcm/send/dX%3A_A%2Bb/.", fcm + "/"},
		{"https://fcm.googleapis.com/fcm/send/x/dX%3A_A%2Bb/..", "https://fcm.googleapis.com/fcm/send/x/"},
		{"https://push.example/a.b/%2Ex/..x/.", "https://push.example/a.b/.x/..x/"},
		{"https://push.example/a//b/", "https://push.example/a//b/"},
		{"https://push.example/a%2F..%2Fb", "https://push.example/a%2F..%2Fb"},
		{"https://push.example../x", "https://push.example../x"},
		{"https://[2A00:1450::200A]:443/x", "https://[2a00:1450::200a]/x"},
		{"not a url", "not a url"},
	} {
		got := chat.CanonicalPushEndpoint(tc.in)
		if got != tc.want {
			t.Errorf("CanonicalPushEndpoint(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if again := chat.CanonicalPushEndpoint(got); again != got {
			t.Errorf("CanonicalPushEndpoint(%q) = %q, not its own canonical spelling", got, again)
		}
	}
}
