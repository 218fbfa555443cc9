package connect

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/nats-io/nkeys"
)

// splitUserInfo takes the user information out of a comma separated list
// of server URLs. nats.go keeps a URL's user information and hands it back
// in ConnectedUrl, ConnectedUrlRedacted (which hides a password but not a
// token) and some errors; a URL without any cannot leak it. The
// credentials found are returned to be given to nats.go as options instead.
// URLs that carry different credentials are refused: one connection
// authenticates as one user.
func splitUserInfo(urls string) (clean string, user *url.Userinfo, err error) {
	parts := strings.Split(urls, ",")
	for i, raw := range parts {
		raw = strings.TrimSpace(raw)
		parts[i] = raw
		s := raw
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, perr := url.Parse(s)
		if perr != nil || u.User == nil {
			// Left for nats.go to refuse; the command checked the
			// list before (and never prints url.Parse's error, which
			// quotes the URL).
			continue
		}
		if user != nil && user.String() != u.User.String() {
			return "", nil, fmt.Errorf("the server URLs %s carry different credentials; give them once with --user/--password or --token", redact(urls))
		}
		user = u.User
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ","), user, nil
}

// redact hides the user information of every URL in a comma separated
// list, with or without a scheme ("nats://tok@host", "tok@host").
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		at := strings.LastIndex(u, "@")
		if at < 0 {
			parts[i] = u
			continue
		}
		start := 0
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			start = scheme + 3
		}
		parts[i] = u[:start] + "***@" + u[at+1:]
	}
	return strings.Join(parts, ",")
}

// Redact hides credentials embedded in server URLs.
func Redact(urls string) string { return redact(urls) }

// minSecret is the length from which a secret is scrubbed from text; a
// shorter one would mangle ordinary words and protects little.
const minSecret = 4

// Secrets lists the secret values the options carry, from flags, the
// environment, the server URLs and the applied nats context: passwords,
// tokens, and an NKey seed given in place of a seed file. Scrub removes
// them from text.
func (o Options) Secrets() []string {
	set := map[string]bool{}
	add := func(s string) {
		if len(s) >= minSecret {
			set[s] = true
		}
	}
	add(o.Password)
	add(o.Token)
	for _, raw := range strings.Split(o.Servers, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			raw = "nats://" + raw
		}
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				add(p)
				add(url.QueryEscape(p))
			} else {
				add(u.User.Username())
			}
		}
		// A URL that does not parse may still hold a secret.
		if at, start := strings.LastIndex(raw, "@"), strings.Index(raw, "://")+3; at >= start {
			info := raw[start:at]
			if _, pass, ok := strings.Cut(info, ":"); ok {
				add(pass)
			} else {
				add(info)
			}
		}
	}
	if looksLikeSeed(o.NKey) {
		add(o.NKey)
	}
	for _, s := range o.contextSecrets {
		add(s)
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	// Longest first, so that a secret containing another is replaced whole.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// Scrub replaces every secret of the options in s with "***". It is the
// last line of defence for text ackprobe did not compose itself, such as
// an error from a library; what ackprobe composes never holds a secret.
// A secret is replaced where it stands alone, not inside a longer word: a
// password "probe" leaves "ackprobe" alone, and is replaced in
// "nats://u:probe@host" or `"probe"`.
func (o Options) Scrub(s string) string {
	for _, secret := range o.Secrets() {
		s = scrub(s, secret)
	}
	return s
}

func scrub(s, secret string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, secret)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(secret)
		if word(s, i-1) && word(secret, 0) || word(s, end) && word(secret, len(secret)-1) {
			// Inside a longer word: keep it, and look further on.
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString("***")
		s = s[end:]
	}
}

// word reports whether s[i] is a letter or digit.
func word(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// looksLikeSeed reports whether s is an NKey seed itself rather than the
// path of a file holding one.
func looksLikeSeed(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != 'S' {
		return false
	}
	_, _, err := nkeys.DecodeSeed([]byte(s))
	return err == nil
}

// LooksLikeSeed reports whether a --nkey value is a seed given in place of
// the path of a seed file.
func LooksLikeSeed(s string) bool { return looksLikeSeed(s) }
