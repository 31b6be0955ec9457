module example.com/goblocked

go 1.19
