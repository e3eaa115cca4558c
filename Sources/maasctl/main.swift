// maasctl: the command-line client of the MaaS gateway (issue 5, in progress).
import Foundation

FileHandle.standardError.write(Data("maasctl: not yet implemented\n".utf8))
exit(2)
