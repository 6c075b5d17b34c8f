module localaks/standin/pause

go 1.21
