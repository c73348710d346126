package database

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateSchemaName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		valid bool
	}{
		{"identity", true},
		{"billing_v2", true},
		{"a", true},
		{"a" + strings.Repeat("b", 62), true},
		{"a" + strings.Repeat("b", 63), false}, // 64 bytes: over PostgreSQL's limit
		{"", false},
		{"Identity", false},
		{"2fa", false},
		{"_private", false},
		{"with-dash", false},
		{"with space", false},
		{`quote"d`, false},
		{"pg_catalog", false},
		{"pg_custom", false},
		{"pgx", true},
	}
	for _, tt := range tests {
		err := ValidateSchemaName(tt.name)
		if tt.valid {
			require.NoError(t, err, tt.name)
		} else {
			require.Error(t, err, tt.name)
		}
	}
}
