package schema

import "testing"

func BenchmarkCatalogEncode(b *testing.B) {
	ev := mustLookup(b, EventCourseCatalogInfoChanged)
	v := catalogSample()
	b.Run("edxbus", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ev.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkCatalogDecode(b *testing.B) {
	ev := mustLookup(b, EventCourseCatalogInfoChanged)
	data, err := ev.Encode(catalogSample())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("edxbus", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ev.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("edxbus-DecodeWriter-resolved", func(b *testing.B) {
		upstreamJSON, _ := upstreamSchema(b, EventCourseCatalogInfoChanged)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ev.DecodeWriter(upstreamJSON, data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkParseJSONCatalog(b *testing.B) {
	ev := mustLookup(b, EventCourseCatalogInfoChanged)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ev.ParseJSON([]byte(catalogJSON)); err != nil {
			b.Fatal(err)
		}
	}
}
