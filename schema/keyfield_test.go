package schema

import (
	"errors"
	"testing"
)

func TestCheckKeyFieldAndKeyAt(t *testing.T) {
	ev := mustLookup(t, EventCourseCatalogInfoChanged)
	for _, ok := range []string{"catalog_info.course_key", "catalog_info.name", "catalog_info.schedule_data.pacing", "catalog_info.hidden"} {
		if err := ev.CheckKeyField(ok); err != nil {
			t.Errorf("CheckKeyField(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "catalog_info", "catalog_info.nope", "catalog_info.course_key.deeper", "catalog_info.schedule_data"} {
		var kfe *KeyFieldError
		if err := ev.CheckKeyField(bad); !errors.As(err, &kfe) {
			t.Errorf("CheckKeyField(%q) = %v, want *KeyFieldError", bad, err)
		}
	}
	v := catalogSample()
	key, err := ev.KeyAt(v, "catalog_info.name")
	if err != nil || key != v.CatalogInfo.Name {
		t.Fatalf("KeyAt(name) = %q, %v", key, err)
	}
	if _, err := ev.KeyAt(v, "catalog_info.nope"); err == nil {
		t.Fatal("KeyAt on a missing field succeeded")
	}
}
