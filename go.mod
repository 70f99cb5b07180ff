module github.com/kioskd/kioskd

go 1.26.8
