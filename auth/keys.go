package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Key set refresh bounds.
const (
	// keyMissInterval is the least time between two fetches of the key
	// set caused by tokens naming a key not in the cache. Anyone who can
	// reach /mcp can send such a token; without the bound each one would
	// send toolgate to the issuer.
	keyMissInterval = 10 * time.Second
	// keyMaxAge is how long a fetched key set is used before the next
	// token makes toolgate fetch it again, so a key the issuer withdrew
	// (under a kid still cached) stops verifying.
	keyMaxAge = 10 * time.Minute
	// maxKeySetBytes bounds a key set response.
	maxKeySetBytes = 1 << 20
)

// errKeyThrottled: the token names a key not cached, and the key set was
// fetched too recently to fetch it again.
var errKeyThrottled = errors.New("auth: oidc: token signed by a key not in the issuer's key set")

// keySet is the issuer's JSON Web Key Set as an oidc.KeySet: signatures
// are verified by go-jose against the cached keys. The set is fetched
// again when a token names a key not in it (at most once per
// keyMissInterval: a token signed by a rotated-in key is accepted once its
// key is published) and when it is older than keyMaxAge. A signature that
// fails against a cached key never causes a fetch. go-oidc's RemoteKeySet
// fetches on every such failure, which lets any client make toolgate
// call the issuer once per request.
type keySet struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm
	now    func() time.Time

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time // when keys were fetched
	lastMiss time.Time // when a miss last caused a fetch
	// fetching serialises fetches; waiters use its result.
	fetching *sync.WaitGroup
	fetchErr error
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc: malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("auth: oidc: token must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, stale, known := k.lookup(kid)
	if stale || !known {
		if keys, err = k.refresh(ctx, !known); err != nil {
			return nil, err
		}
	}
	for i := range keys {
		if kid == "" || keys[i].KeyID == kid {
			if payload, err := jws.Verify(&keys[i]); err == nil {
				return payload, nil
			}
		}
	}
	return nil, errors.New("auth: oidc: signature does not verify with the issuer's keys")
}

// lookup returns the cached keys, whether they are too old, and whether
// kid is among them ("" matches any key).
func (k *keySet) lookup(kid string) (keys []jose.JSONWebKey, stale, known bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys = k.keys
	stale = k.fetched.IsZero() || k.now().Sub(k.fetched) >= keyMaxAge
	for _, key := range keys {
		if kid == "" || key.KeyID == kid {
			known = true
		}
	}
	return keys, stale, known
}

// refresh fetches the key set (one fetch at a time; concurrent callers
// share it) and returns the keys. miss says the fetch is for a key not
// cached, which is refused without a fetch within keyMissInterval of the
// last such fetch.
func (k *keySet) refresh(ctx context.Context, miss bool) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	if wg := k.fetching; wg != nil {
		k.mu.Unlock()
		wg.Wait()
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.keys, k.fetchErr
	}
	now := k.now()
	if miss {
		if !k.lastMiss.IsZero() && now.Sub(k.lastMiss) < keyMissInterval {
			k.mu.Unlock()
			return nil, errKeyThrottled
		}
		k.lastMiss = now
	}
	wg := &sync.WaitGroup{}
	wg.Add(1)
	k.fetching = wg
	k.mu.Unlock()

	keys, err := k.fetch(ctx)

	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.keys, k.fetched = keys, now
	}
	k.fetchErr = err
	k.fetching = nil
	wg.Done()
	return k.keys, err
}

// fetch reads the key set, skipping keys go-jose cannot use (RFC 7517
// asks that unknown key types be ignored).
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc keys: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: oidc keys: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes))
	if err != nil {
		return nil, fmt.Errorf("auth: oidc keys: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: oidc keys: %s from %s", resp.Status, k.url)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("auth: oidc keys: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(r); err != nil || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}
