module logsamples

go 1.19
