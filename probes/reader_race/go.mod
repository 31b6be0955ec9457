module wedge.probes/readerrace

go 1.19
