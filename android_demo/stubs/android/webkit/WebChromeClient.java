package android.webkit;

import android.content.Intent;
import android.net.Uri;

public class WebChromeClient {
    public void onPermissionRequest(PermissionRequest request) { throw new RuntimeException("Stub!"); }
    public boolean onShowFileChooser(WebView webView, ValueCallback<Uri[]> filePathCallback,
                                     FileChooserParams fileChooserParams) { throw new RuntimeException("Stub!"); }

    public abstract static class FileChooserParams {
        public static Uri[] parseResult(int resultCode, Intent data) { throw new RuntimeException("Stub!"); }
        public abstract Intent createIntent();
    }
}
