package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/edxbus/edxbus/broker/brokertest"
)

// FuzzAdminPath sends arbitrary methods, paths and bodies to the admin API:
// never a panic (the server would drop the connection), and no 5xx.
func FuzzAdminPath(f *testing.F) {
	for _, seed := range []string{"/admin/v2/tenants", "/admin/v2/persistent/public/default/t/partitions",
		"/admin/v2/schemas/public/default/t/schema/1", "/admin/v2/namespaces/public/default/deduplication",
		"/admin/v2/persistent/public/default/t/subscription/s/resetcursor/12", "/lookup/v2/topic/persistent/a/b/c"} {
		f.Add("PUT", seed, "3")
		f.Add("GET", seed, "")
		f.Add("POST", seed, `{"type":"AVRO","schema":"{}"}`)
	}
	b := brokertest.Start(f)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "PUT", "POST", "DELETE":
		default:
			return
		}
		u, err := url.Parse(b.AdminURL() + "/" + strings.TrimLeft(path, "/"))
		if err != nil || strings.ContainsAny(path, "?#%") {
			return
		}
		req, err := http.NewRequest(method, u.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v (did the handler panic?)", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d", method, path, body, resp.StatusCode)
		}
	})
}
