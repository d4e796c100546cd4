package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/wschat/chat/internal/chat"
)

type pushKeyOut struct {
	Body struct {
		PublicKey string `json:"public_key" doc:"the VAPID public key (uncompressed P-256 point, base64url): PushManager.subscribe's applicationServerKey"`
	}
}

// pushSubscription is what PushSubscription.toJSON() gives, as browsers send it.
type pushSubscription struct {
	Endpoint string `json:"endpoint" minLength:"1" maxLength:"2048" doc:"the push service URL of the subscription (PushSubscription.endpoint)"`
	// ExpirationTime is in toJSON()'s answer (null in every browser today): taken and ignored.
	ExpirationTime *float64 `json:"expirationTime,omitempty" nullable:"true" doc:"PushSubscription.expirationTime, as toJSON() gives it; ignored"`
	Keys           struct {
		P256dh string `json:"p256dh" minLength:"1" maxLength:"200" doc:"the browser's P-256 public key, base64url"`
		Auth   string `json:"auth" minLength:"1" maxLength:"100" doc:"the 16-byte authentication secret, base64url"`
	} `json:"keys"`
}

type pushSubscribeIn struct {
	Body pushSubscription
}

type pushUnsubscribeIn struct {
	Body struct {
		Endpoint string `json:"endpoint" minLength:"1" maxLength:"2048"`
	}
}

func (s *Server) pushRoutes() {
	errs := []string{chat.CodeUnauthenticated, chat.CodeNotFound}
	off := func(ctx context.Context) error {
		return s.problem(ctx, chat.Errorf(chat.CodeNotFound, "Web Push is not configured on this server"))
	}
	huma.Register(s.api, huma.Operation{
		OperationID: "push-key", Method: http.MethodGet, Path: "/api/v1/push/key", Tags: []string{"push"},
		Summary: "The Web Push key", Description: "404 when this server sends no Web Push (a cluster without CHAT_VAPID_PRIVATE_KEY).",
		Security: authSecurity, Responses: errorResponses(errs...),
	}, func(ctx context.Context, _ *sessionOnly) (*pushKeyOut, error) {
		if s.opts.Push == nil {
			return nil, off(ctx)
		}
		out := &pushKeyOut{}
		out.Body.PublicKey = s.opts.Push.PublicKey()
		return out, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "push-subscribe", Method: http.MethodPost, Path: "/api/v1/push/subscriptions", Tags: []string{"push"},
		Summary: "Receive Web Push on this browser",
		Description: "Keeps the browser's PushSubscription (its toJSON()) for me. While none of my devices is connected, a message I have not " +
			"read within CHAT_PUSH_DELAY (10 s by default) of a chat I am told of (notify all, not muted) is pushed to every subscription of mine: " +
			"one notification per chat (Topic chat-{id}, tag chat-{id}), payload {chat_id, seq, title, body, tag}. A subscription its push service calls gone (404, 410) is deleted. " +
			"An endpoint another account subscribed from a session still signed in is not moved to me unless the keys are the same (the same browser): 409 push_endpoint_taken. " +
			"The endpoint is kept in one spelling of its URL (scheme and host in lower case, no trailing dot, no default port, percent-encoding normalized, no fragment): its other spellings are the same subscription.",
		DefaultStatus: http.StatusNoContent, Security: authSecurity, Responses: errorResponses(append(errs, chat.CodeInvalid, chat.CodePushEndpointTaken)...),
	}, func(ctx context.Context, in *pushSubscribeIn) (*struct{}, error) {
		if s.opts.Push == nil {
			return nil, off(ctx)
		}
		err := s.opts.Push.Subscribe(ctx, principal(ctx), chat.PushSubscription{Endpoint: in.Body.Endpoint, P256dh: in.Body.Keys.P256dh, Auth: in.Body.Keys.Auth})
		if err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})
	huma.Register(s.api, huma.Operation{
		OperationID: "push-unsubscribe", Method: http.MethodDelete, Path: "/api/v1/push/subscriptions", Tags: []string{"push"},
		Summary: "Stop Web Push to a browser", Description: "404 when I have no subscription with this endpoint (in any spelling of its URL).",
		DefaultStatus: http.StatusNoContent, Security: authSecurity, Responses: errorResponses(append(errs, chat.CodeInvalid)...),
	}, func(ctx context.Context, in *pushUnsubscribeIn) (*struct{}, error) {
		if s.opts.Push == nil {
			return nil, off(ctx)
		}
		if err := s.opts.Push.Unsubscribe(ctx, principal(ctx), in.Body.Endpoint); err != nil {
			return nil, s.problem(ctx, err)
		}
		return nil, nil
	})
}
