package bridge

// Version is the version of the gobridge Go module and command.
const Version = "0.1.0"
