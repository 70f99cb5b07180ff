module github.com/kioskd/kioskd

go 1.24.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/google/uuid v1.6.0
)
