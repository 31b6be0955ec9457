module wedge.test/httpbusy

go 1.19
